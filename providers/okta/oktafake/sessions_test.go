package oktafake_test

import (
	"testing"

	"github.com/accessbot/accessbot/providers/okta/oktafake"
)

// TestClearSessions: DELETE /api/v1/users/{id}/sessions answers 204 and
// ends the user's sessions (oauthTokens=true recorded), 404 E0000007 for
// an unknown user or a login in place of the id, 429 E0000047 with the
// rate-limit headers when throttled.
func TestClearSessions(t *testing.T) {
	f := oktafake.New()
	defer f.Close()
	f.AddAPIToken("tok")
	uid := f.AddUser("a@example.com")
	f.AddSession(uid)
	if resp, _ := get(t, f, "DELETE", "/api/v1/users/"+uid+"/sessions?oauthTokens=true", "SSWS tok"); resp.StatusCode != 204 {
		t.Fatalf("DELETE sessions: %d", resp.StatusCode)
	}
	if ends := f.SessionEnds(); len(ends) != 1 || ends[0].UserID != uid || !ends[0].OAuthTokens || ends[0].Sessions != 1 || f.Sessions(uid) != 0 {
		t.Errorf("ends %+v", ends)
	}
	for _, id := range []string{"00unobody", "a@example.com"} {
		if resp, body := get(t, f, "DELETE", "/api/v1/users/"+id+"/sessions", "SSWS tok"); resp.StatusCode != 404 || body["errorCode"] != "E0000007" {
			t.Errorf("unknown user %s: %d %v", id, resp.StatusCode, body)
		}
	}
	if resp, body := get(t, f, "DELETE", "/api/v1/users/"+uid+"/sessions?oauthTokens=yes", "SSWS tok"); resp.StatusCode != 400 || body["errorCode"] != "E0000001" {
		t.Errorf("bad oauthTokens: %d %v", resp.StatusCode, body)
	}
	f.ThrottleSessionEnds(1)
	resp, body := get(t, f, "DELETE", "/api/v1/users/"+uid+"/sessions", "SSWS tok")
	if resp.StatusCode != 429 || body["errorCode"] != "E0000047" || resp.Header.Get("X-Rate-Limit-Remaining") != "0" || resp.Header.Get("X-Rate-Limit-Reset") == "" {
		t.Errorf("throttled: %d %v %v", resp.StatusCode, body, resp.Header)
	}
	if n := f.Calls("DELETE /api/v1/users/{id}/sessions"); n != 5 {
		t.Errorf("%d calls counted, want 5", n)
	}
}
