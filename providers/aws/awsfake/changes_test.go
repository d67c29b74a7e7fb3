package awsfake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessbot/accessbot/providers/aws/awsfake"
)

func call(ctx context.Context, t *testing.T, url, op string, in map[string]any) (int, map[string]any) {
	t.Helper()
	in["IdentityStoreId"] = awsfake.DefaultIdentityStoreID
	body, _ := json.Marshal(in)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/identitystore/aws4_request")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSIdentityStore."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// Changes records each membership the API created or deleted, with its
// time; calls that change nothing (a conflict) are not recorded. With
// SetDelay a request takes that long, and one whose client gave up is
// still carried out.
func TestChangesAndDelay(t *testing.T) {
	f := awsfake.New()
	defer f.Close()
	g := f.AddGroup("admins")
	u := f.AddUser("alice@example.com")
	ctx := context.Background()
	member := map[string]any{"GroupId": g, "MemberId": map[string]any{"UserId": u}}

	status, out := call(ctx, t, f.URL, "CreateGroupMembership", member)
	if status != http.StatusOK {
		t.Fatalf("create: %d %v", status, out)
	}
	if status, _ := call(ctx, t, f.URL, "CreateGroupMembership", member); status != http.StatusBadRequest {
		t.Fatalf("second create: %d, want a conflict", status)
	}
	mid, _ := out["MembershipId"].(string)

	f.SetDelay(200 * time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	call(cctx, t, f.URL, "DeleteGroupMembership", map[string]any{"MembershipId": mid})
	deadline := time.Now().Add(5 * time.Second)
	for len(f.Changes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cs := f.Changes()
	if len(cs) != 2 || cs[0].Op != "CreateGroupMembership" || cs[1].Op != "DeleteGroupMembership" ||
		cs[0].Group != g || cs[0].User != u || cs[1].MembershipID != mid {
		t.Fatalf("changes %+v", cs)
	}
	if took := cs[1].At.Sub(start); took < 200*time.Millisecond {
		t.Fatalf("delete carried out %v after it was sent, want after the 200ms delay", took)
	}
	if len(f.Members(g)) != 0 {
		t.Fatal("delete whose client gave up was not carried out")
	}
}
