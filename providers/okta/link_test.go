package okta

import "testing"

func TestNextLink(t *testing.T) {
	for _, c := range []struct {
		headers []string
		want    string
	}{
		{nil, ""},
		{[]string{`<https://o/api/v1/groups/g/users?limit=2>; rel="self"`}, ""},
		{[]string{`<https://o/a?limit=2>; rel="self"`, `<https://o/a?after=00u2&limit=2>; rel="next"`}, "https://o/a?after=00u2&limit=2"},
		{[]string{`<https://o/a?x=1>; rel="self", <https://o/a?after=00u9>; rel=next`}, "https://o/a?after=00u9"},
		{[]string{`<https://o/a?after=1,2>; type="json"; rel="prev next"`}, "https://o/a?after=1,2"},
	} {
		if got := nextLink(c.headers); got != c.want {
			t.Errorf("nextLink(%q) = %q, want %q", c.headers, got, c.want)
		}
	}
}

func TestSearchEscape(t *testing.T) {
	if got := searchEscape(`a"b\c@example.com`); got != `a\"b\\c@example.com` {
		t.Errorf("searchEscape = %s", got)
	}
}
