package transcript

import (
	"math/big"
	"testing"
)

func TestTranscript_FieldBoundariesMatter(t *testing.T) {
	q := new(big.Int).Lsh(big.NewInt(1), 255)
	a := New("d")
	a.Bytes("x", []byte("ab"))
	a.Bytes("y", []byte("c"))
	b := New("d")
	b.Bytes("x", []byte("a"))
	b.Bytes("y", []byte("bc"))
	if a.Challenge(q).Cmp(b.Challenge(q)) == 0 {
		t.Fatal("moving bytes between fields kept the challenge")
	}
	c := New("d")
	c.Int("v", big.NewInt(5))
	d := New("d")
	d.Int("v", big.NewInt(-5))
	if c.Challenge(q).Cmp(d.Challenge(q)) == 0 {
		t.Fatal("sign of an integer is not bound")
	}
	e := New("other domain")
	e.Int("v", big.NewInt(5))
	if c.Challenge(q).Cmp(e.Challenge(q)) == 0 {
		t.Fatal("domain is not bound")
	}
	f := New("d")
	f.Int("v", big.NewInt(5))
	if c.Challenge(q).Cmp(f.Challenge(q)) != 0 {
		t.Fatal("transcript is not deterministic")
	}
}
