package inboxlease

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestHeld(t *testing.T) {
	var h Held
	if !h.Add("a") || h.Add("a") {
		t.Fatal("Add: first true, second false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if !h.Start("a", cancel) || h.Start("missing", cancel) {
		t.Fatal("Start: held true, unknown false")
	}
	if !h.Lose("a") || ctx.Err() == nil || !h.Lost("a") {
		t.Fatal("Lose must cancel the handling and mark the entry lost")
	}
	if len(h.IDs()) != 0 {
		t.Errorf("a lost entry is not renewed: %v", h.IDs())
	}
	if h.Start("a", cancel) {
		t.Error("a lost entry must not start")
	}
	if !h.Add("a") || h.Lost("a") {
		t.Error("a lost entry taken back is held again")
	}
	h.Add("b")
	if ids := h.IDs(); !slices.Contains(ids, "a") || !slices.Contains(ids, "b") || len(ids) != 2 {
		t.Errorf("IDs %v", ids)
	}
	h.Drop("a")
	if h.Lose("a") {
		t.Error("Lose of a dropped entry")
	}
}

func TestOwnerIsUnique(t *testing.T) {
	a, b := Owner("x"), Owner("x")
	if a == b || !strings.Contains(a, "-") {
		t.Errorf("owners %q, %q", a, b)
	}
}
