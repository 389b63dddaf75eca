package wire

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

func TestWire_RoundTrip(t *testing.T) {
	w := &Writer{}
	w.Uint8(7)
	w.Int(big.NewInt(0))
	w.Int(new(big.Int).Lsh(big.NewInt(1), 2000))
	w.Scalar(big.NewInt(5))
	w.Point(secp.Generator())
	r := NewReader(w.Bytes())
	if r.Uint8("a") != 7 || r.Int(10, "b").Sign() != 0 || r.Int(MaxIntLen, "c").BitLen() != 2001 ||
		r.Scalar("d").Int64() != 5 || !r.Point("e").Equal(secp.Generator()) {
		t.Fatal("round trip mismatch")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestWire_RejectsBadEncodings(t *testing.T) {
	cases := map[string]func(r *Reader){
		"truncated":       func(r *Reader) { r.Fixed(5, "x") },
		"int too long":    func(r *Reader) { r.Int(1, "x") },
		"non-minimal int": func(r *Reader) { r.Int(10, "x") },
		"scalar >= q":     func(r *Reader) { r.Scalar("x") },
		"identity point":  func(r *Reader) { r.Point("x") },
		"trailing":        func(r *Reader) { r.Uint8("x") },
	}
	inputs := map[string][]byte{
		"truncated":       {1, 2},
		"int too long":    {0, 2, 1, 1},
		"non-minimal int": {0, 2, 0, 1},
		"scalar >= q":     bytes.Repeat([]byte{0xff}, 32),
		"identity point":  make([]byte, 33),
		"trailing":        {1, 2},
	}
	for name, f := range cases {
		r := NewReader(inputs[name])
		f(r)
		if err := r.Done(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 1, 5})
	f.Add(append([]byte{0, 0}, secp.Generator().Bytes()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		x := r.Int(MaxIntLen, "x")
		p := r.Point("p")
		s := r.Scalar("s")
		if r.Done() == nil {
			w := &Writer{}
			w.Int(x)
			w.Point(p)
			w.Scalar(s)
			if !bytes.Equal(w.Bytes(), b) {
				t.Fatal("accepted a non-canonical encoding")
			}
		}
	})
}
