package main

// Attacks by another user on the site's host: stealing the control API's
// token, swapping the files the site trusts, flooding the API.

import (
	"strings"
	"testing"
)

// TestAPI_InvalidKeyIDIsBadRequest: key IDs that are not 16 to 64
// lowercase hex digits are the caller's mistake (400 bad_request), never a
// 500 from the store refusing them as file names.
func TestAPI_InvalidKeyIDIsBadRequest(t *testing.T) {
	s := newTestSite(t)
	s.mustStart(t)
	digest := strings.Repeat("ab", 32)
	for _, id := range []string{"zz", "../../../etc/passwd", ".", "..", "lock", strings.Repeat("A", 32),
		strings.Repeat("0", 15), strings.Repeat("0", 65), "0123456789abcdef/0", "0123456789abcdef\x00"} {
		code, eb, stderr := runClient(t, "sign", "--home", s.home, "--key", id, "--digest", digest)
		if code != 1 || eb.Code != codeBadRequest {
			t.Errorf("sign --key %q: exit %d, code %q (%s); want bad_request", id, code, eb.Code, stderr)
		}
		code, eb, stderr = runClient(t, "presign", "--home", s.home, "--key", id, "--count", "1")
		if code != 1 || eb.Code != codeBadRequest {
			t.Errorf("presign --key %q: exit %d, code %q (%s); want bad_request", id, code, eb.Code, stderr)
		}
	}
}
