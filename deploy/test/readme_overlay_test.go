package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeOverlay: the overlay the README's "Deploy to Kubernetes" section
// tells people to write renders against the base, and does what it says
// (image, config, IAM role).
func TestReadmeOverlay(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to render the README's overlay and is not on PATH: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start = "cat > accessbot-prod/kustomization.yaml <<'YAML'\n"
	_, rest, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README: no %q", strings.TrimSpace(start))
	}
	var overlay strings.Builder
	for _, line := range strings.Split(rest, "\n") {
		if strings.TrimSpace(line) == "YAML" {
			break
		}
		overlay.WriteString(strings.TrimPrefix(line, "   ") + "\n")
	}

	// The layout the README assumes: the checkout as accessbot/, the overlay beside it.
	dir := t.TempDir()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "accessbot")); err != nil {
		t.Fatal(err)
	}
	prod := filepath.Join(dir, "accessbot-prod")
	if err := os.Mkdir(prod, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(kubeDir, "accessbot.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "C0123SECURITY", "C0OVERLAYSEC", 1))
	if err := os.WriteFile(filepath.Join(prod, "accessbot.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prod, "kustomization.yaml"), []byte(overlay.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", prod).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize of the README's overlay: %v\n%s\n--- overlay:\n%s", err, out, overlay.String())
	}
	for _, want := range []string{
		"image: registry.example.com/platform/accessbot:v0.1.0",
		"eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/accessbot",
		"security_channel: C0OVERLAYSEC",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the README's overlay renders without %q", want)
		}
	}
	if n := strings.Count(string(out), "kind: ConfigMap"); n != 1 {
		t.Errorf("the README's overlay renders %d ConfigMaps, want the base's one replaced", n)
	}
}
