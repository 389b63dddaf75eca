package tss

import (
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// PartyID identifies one party (one site) to every other party. In keyquorum
// it is the string form of the site's libp2p peer ID, which is derived from
// the site's HSM-held identity key, so it is stable across restarts and the
// same on every site. The tss package treats it as an opaque, non-empty
// printable string of at most 128 bytes.
type PartyID string

// Validate reports whether p is usable as a party ID.
func (p PartyID) Validate() error {
	if p == "" {
		return errors.New("tss: empty party ID")
	}
	if len(p) > 128 {
		return fmt.Errorf("tss: party ID of %d bytes is longer than 128", len(p))
	}
	for _, r := range string(p) {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("tss: party ID %q has a character outside printable ASCII", p)
		}
	}
	return nil
}

// SortParties returns a sorted copy of ps. Every site sorts the same way, so
// a sorted list is the canonical form of a party set.
func SortParties(ps []PartyID) []PartyID {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

// validPartySet checks that ps are valid, distinct party IDs.
func validPartySet(ps []PartyID) error {
	seen := make(map[PartyID]bool, len(ps))
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("tss: party %s appears twice", p)
		}
		seen[p] = true
	}
	return nil
}

func containsParty(ps []PartyID, p PartyID) bool { return slices.Contains(ps, p) }

func joinParties(ps []PartyID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func writeLenPrefixed(h hash.Hash, b []byte) {
	var l [8]byte
	n := uint64(len(b))
	for i := 7; i >= 0; i-- {
		l[i] = byte(n)
		n >>= 8
	}
	h.Write(l[:])
	h.Write(b)
}
