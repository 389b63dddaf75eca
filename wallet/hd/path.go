package hd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// HardenedOffset is the first hardened child index (2^31). Indexes at or above
// it need the parent private key and are refused by this package.
const HardenedOffset uint32 = 1 << 31

// MaxDepth is the longest path accepted. BIP-32 serializes the depth of an
// extended key in one byte, so no key is deeper than 255 levels.
const MaxDepth = 255

// ErrHardened is returned (wrapped) for a path that contains a hardened step.
// A hardened child needs the whole parent private key, which no party of a
// threshold key ever holds.
var ErrHardened = errors.New("hd: hardened derivation is not possible for a threshold key")

// ErrMalformedPath is returned (wrapped) for a path string that is not of the
// form "m" or "m/i/j/..." with canonical decimal indexes.
var ErrMalformedPath = errors.New("hd: malformed derivation path")

// Path is a sequence of non-hardened BIP-32 child indexes, from the master
// key down. The empty Path is the master key itself ("m").
//
// A Path built by [ParsePath] or UnmarshalText only ever holds indexes below
// [HardenedOffset]; [Derive] checks again, so a hand-built Path with a hardened
// index is refused there too.
type Path []uint32

// ParsePath parses a derivation path such as "m", "m/0" or "m/0/7".
//
// Every index must be written in canonical decimal (no sign, no leading
// zeros, no spaces) and be below 2^31. A hardened marker ("'", "h" or "H")
// or an index of 2^31 or more gives an error wrapping [ErrHardened]; anything
// else that is not a path gives an error wrapping [ErrMalformedPath]. For every
// accepted string s, ParsePath(s).String() == s.
func ParsePath(s string) (Path, error) {
	if s == "m" {
		return Path{}, nil
	}
	rest, ok := strings.CutPrefix(s, "m/")
	if !ok {
		return nil, fmt.Errorf("%w %q: it must start with \"m\" (e.g. \"m/0/7\")", ErrMalformedPath, s)
	}
	parts := strings.Split(rest, "/")
	if len(parts) > MaxDepth {
		return nil, fmt.Errorf("%w %q: %d levels, at most %d are allowed", ErrMalformedPath, s, len(parts), MaxDepth)
	}
	p := make(Path, 0, len(parts))
	for n, part := range parts {
		idx, err := parseIndex(s, n+1, part)
		if err != nil {
			return nil, err
		}
		p = append(p, idx)
	}
	return p, nil
}

// parseIndex parses component number level (from 1) of path s.
func parseIndex(s string, level int, part string) (uint32, error) {
	if part == "" {
		return 0, fmt.Errorf("%w %q: level %d is empty", ErrMalformedPath, s, level)
	}
	if last := part[len(part)-1]; last == '\'' || last == 'h' || last == 'H' {
		return 0, fmt.Errorf("%w: path %q, level %d (%q) is hardened; use only non-hardened indexes such as m/0/7", ErrHardened, s, level, part)
	}
	for i := 0; i < len(part); i++ {
		if part[i] < '0' || part[i] > '9' {
			return 0, fmt.Errorf("%w %q: level %d (%q) is not a decimal number", ErrMalformedPath, s, level, part)
		}
	}
	if len(part) > 1 && part[0] == '0' {
		return 0, fmt.Errorf("%w %q: level %d (%q) has a leading zero", ErrMalformedPath, s, level, part)
	}
	v, err := strconv.ParseUint(part, 10, 64)
	if err != nil || v > 1<<32-1 {
		return 0, fmt.Errorf("%w %q: level %d (%q) does not fit in 32 bits", ErrMalformedPath, s, level, part)
	}
	if uint32(v) >= HardenedOffset {
		return 0, fmt.Errorf("%w: path %q, level %d is index %s ≥ 2^31, which BIP-32 reserves for hardened children", ErrHardened, s, level, part)
	}
	return uint32(v), nil
}

// String returns the path in the form [ParsePath] accepts, e.g. "m/0/7".
// A hardened index in a hand-built [Path] is shown with a "'" suffix so that it
// is visible, and ParsePath refuses that string.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString("m")
	for _, idx := range p {
		b.WriteByte('/')
		if idx >= HardenedOffset {
			b.WriteString(strconv.FormatUint(uint64(idx-HardenedOffset), 10))
			b.WriteByte('\'')
			continue
		}
		b.WriteString(strconv.FormatUint(uint64(idx), 10))
	}
	return b.String()
}

// Validate reports whether p can be used for public derivation: at most
// [MaxDepth] levels and no hardened index.
func (p Path) Validate() error {
	if len(p) > MaxDepth {
		return fmt.Errorf("%w: %d levels, at most %d are allowed", ErrMalformedPath, len(p), MaxDepth)
	}
	for n, idx := range p {
		if idx >= HardenedOffset {
			return fmt.Errorf("%w: path %s, level %d is index %d ≥ 2^31", ErrHardened, p, n+1, idx)
		}
	}
	return nil
}

// Child returns a new path with index i appended; p is not modified.
func (p Path) Child(i uint32) Path {
	c := make(Path, len(p), len(p)+1)
	copy(c, p)
	return append(c, i)
}

// Equal reports whether p and q name the same path.
func (p Path) Equal(q Path) bool {
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// MarshalText implements encoding.TextMarshaler, so a [Path] appears in JSON as
// its string form ("m/0/7"). It fails for a path that Validate refuses.
func (p Path) MarshalText() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the rules of
// [ParsePath].
func (p *Path) UnmarshalText(text []byte) error {
	q, err := ParsePath(string(text))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
