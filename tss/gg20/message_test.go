package gg20

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// reencode decodes a payload of round r from signer from in a run of n
// signers and encodes it again.
func reencode(t *testing.T, r, n, from int, payload []byte) []byte {
	t.Helper()
	m, err := decodePayload(r, n, from, payload)
	if err != nil {
		t.Fatalf("round %d from signer %d of %d: %v", r, from, n, err)
	}
	if c, ok := m.(*msgComplaint); ok {
		return c.encode()
	}
	return encodeMsg(t, m)
}

// Payloads of format version 1 recorded from earlier runs decode and
// encode back to the same bytes, so that signers with this code and with
// the code that recorded them understand each other.
func TestMessageVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "messages-v1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("bad vector line %q", line)
		}
		var v [3]int
		for i := range v {
			if v[i], err = strconv.Atoi(f[1+i]); err != nil {
				t.Fatalf("bad vector line %q", line)
			}
		}
		n, from, r := v[0], v[1], v[2]
		payload, err := hex.DecodeString(f[4])
		if err != nil {
			t.Fatalf("bad vector line %q", line)
		}
		if got := reencode(t, r, n, from, payload); !bytes.Equal(got, payload) {
			t.Fatalf("%s run, round %d from signer %d of %d: encodes to other bytes", f[0], r, from, n)
		}
		kind := strconv.Itoa(r)
		if payload[0] == payloadComplaint {
			kind = "complaint"
		}
		seen[kind] = true
	}
	for _, kind := range []string{"1", "2", "3", "4", "5", "6", "8", "9", "complaint"} {
		if !seen[kind] {
			t.Errorf("no vector of kind %s", kind)
		}
	}
}
