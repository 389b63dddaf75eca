package hd_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in    string
		want  hd.Path
		match error
	}{
		{in: "m", want: hd.Path{}},
		{in: "m/0", want: hd.Path{0}},
		{in: "m/0/7", want: hd.Path{0, 7}},
		{in: "m/2147483647", want: hd.Path{2147483647}},
		{in: "m/0'/1", match: hd.ErrHardened},
		{in: "m/0h", match: hd.ErrHardened},
		{in: "m/44H/0", match: hd.ErrHardened},
		{in: "m/2147483648", match: hd.ErrHardened},
		{in: "m/4294967295", match: hd.ErrHardened},
		{in: "m/4294967296", match: hd.ErrMalformedPath},
		{in: "", match: hd.ErrMalformedPath},
		{in: "M/0", match: hd.ErrMalformedPath},
		{in: "0/1", match: hd.ErrMalformedPath},
		{in: "m/", match: hd.ErrMalformedPath},
		{in: "m//1", match: hd.ErrMalformedPath},
		{in: "m/1/", match: hd.ErrMalformedPath},
		{in: "m/01", match: hd.ErrMalformedPath},
		{in: "m/+1", match: hd.ErrMalformedPath},
		{in: "m/-1", match: hd.ErrMalformedPath},
		{in: "m/ 1", match: hd.ErrMalformedPath},
		{in: "m/x", match: hd.ErrMalformedPath},
		{in: "m/1a", match: hd.ErrMalformedPath},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := hd.ParsePath(tc.in)
			if tc.match != nil {
				if !errors.Is(err, tc.match) {
					t.Fatalf("ParsePath(%q) err = %v, want %v", tc.in, err, tc.match)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("ParsePath(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestParsePath_RejectsMoreThanMaxDepth(t *testing.T) {
	s := "m"
	for i := 0; i < hd.MaxDepth; i++ {
		s += "/1"
	}
	if _, err := hd.ParsePath(s); err != nil {
		t.Fatalf("depth %d refused: %v", hd.MaxDepth, err)
	}
	if _, err := hd.ParsePath(s + "/1"); !errors.Is(err, hd.ErrMalformedPath) {
		t.Fatalf("depth %d: err = %v, want ErrMalformedPath", hd.MaxDepth+1, err)
	}
}

func TestPath_JSONRoundTrip(t *testing.T) {
	type req struct {
		Path hd.Path `json:"path"`
	}
	raw, err := json.Marshal(req{Path: hd.Path{0, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"path":"m/0/7"}` {
		t.Fatalf("JSON = %s", raw)
	}
	var back req
	if err := json.Unmarshal(raw, &back); err != nil || !back.Path.Equal(hd.Path{0, 7}) {
		t.Fatalf("round trip: %v, %v", back.Path, err)
	}
	if err := json.Unmarshal([]byte(`{"path":"m/0'"}`), &back); !errors.Is(err, hd.ErrHardened) {
		t.Fatalf("hardened JSON path: err = %v, want ErrHardened", err)
	}
	if _, err := json.Marshal(req{Path: hd.Path{hd.HardenedOffset}}); !errors.Is(err, hd.ErrHardened) {
		t.Fatalf("marshal hardened path: err = %v, want ErrHardened", err)
	}
}

func TestPath_ChildDoesNotAlias(t *testing.T) {
	base := make(hd.Path, 1, 4)
	a := base.Child(1)
	b := base.Child(2)
	if a[1] != 1 || b[1] != 2 {
		t.Fatalf("Child aliased its parent's storage: %v %v", a, b)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"m", "m/0/7", "m/0'/1", "m/2147483648", "m/01", "m//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := hd.ParsePath(s)
		if err != nil {
			if !errors.Is(err, hd.ErrMalformedPath) && !errors.Is(err, hd.ErrHardened) {
				t.Fatalf("ParsePath(%q) error %v wraps neither sentinel", s, err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePath(%q).String() = %q", s, p.String())
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed path %q does not validate: %v", s, err)
		}
	})
}
