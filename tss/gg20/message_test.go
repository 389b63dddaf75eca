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

// arrive puts payload, as a round-r message from signer from, into a
// fresh inbox of a run of n signers, as Handle does on arrival.
func arrive(r, n, from int, payload []byte) (round, error) {
	p := &Presigner{st: &setup{n: n}}
	rd := p.newRounds()[r]
	return rd, rd.put(from, payload)
}

// reencodeAs decodes a payload of M's round as Handle does and encodes
// what it decoded.
func reencodeAs[M any, PM msgPtr[M]](payload []byte, n, from int) ([]byte, error) {
	m, c, err := decodeMessage[M, PM](payload, n, from)
	switch {
	case err != nil:
		return nil, err
	case c != nil:
		return c.encode(), nil
	}
	return m.encode(), nil
}

// reencoders holds reencodeAs for the message type of each round.
var reencoders = map[int]func(payload []byte, n, from int) ([]byte, error){
	1:               reencodeAs[msg1],
	2:               reencodeAs[msg2],
	3:               reencodeAs[msg3],
	4:               reencodeAs[msg4],
	5:               reencodeAs[msg5],
	6:               reencodeAs[msg6],
	RoundRevealRbar: reencodeAs[msgRevealRbar],
	RoundRevealS:    reencodeAs[msgRevealS],
}

// reencode decodes a payload of round r from signer from in a run of n
// signers and encodes it again.
func reencode(t *testing.T, r, n, from int, payload []byte) []byte {
	t.Helper()
	rd, err := arrive(r, n, from, payload)
	if err != nil {
		t.Fatalf("round %d from signer %d of %d: %v", r, from, n, err)
	}
	if rd.number() != r || !rd.has(from) {
		t.Fatalf("round %d from signer %d of %d: not in the round's inbox", r, from, n)
	}
	out, err := reencoders[r](payload, n, from)
	if err != nil {
		t.Fatalf("round %d from signer %d of %d: %v", r, from, n, err)
	}
	return out
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
	for _, kind := range []string{"1", "2", "3", "4", "5", "6", strconv.Itoa(RoundRevealRbar), strconv.Itoa(RoundRevealS), "complaint"} {
		if !seen[kind] {
			t.Errorf("no vector of kind %s", kind)
		}
	}
}
