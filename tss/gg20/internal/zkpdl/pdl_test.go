package zkpdl

import (
	"crypto/rand"
	"errors"
	"math/big"
	"testing"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
)

var session = []byte("zkpdl test session")

type env struct {
	sk            *arith.PaillierSecret
	pub           *arith.Paillier
	vSecret, vPub *arith.RingPedersen // verifier's parameters
	other         *arith.RingPedersen // a third party's parameters
	k, rho, c     *big.Int
	R, Rbar       *secp.Point
}

func setup(t *testing.T) *env {
	t.Helper()
	pp0, err := fixtures.PreParams(0)
	if err != nil {
		t.Fatal(err)
	}
	pp1, _ := fixtures.PreParams(1)
	pp2, _ := fixtures.PreParams(2)
	e := &env{}
	if e.sk, err = arith.NewPaillierSecret(pp0.PaillierSK); err != nil {
		t.Fatal(err)
	}
	e.pub = arith.NewPaillier(e.sk.N)
	if e.vSecret, err = arith.NewRingPedersenSecret(pp1.NTildei, pp1.H1i, pp1.H2i, pp1.P, pp1.Q); err != nil {
		t.Fatal(err)
	}
	e.vPub, _ = arith.NewRingPedersen(pp1.NTildei, pp1.H1i, pp1.H2i)
	e.other, _ = arith.NewRingPedersen(pp2.NTildei, pp2.H1i, pp2.H2i)
	e.k, _ = rand.Int(rand.Reader, secp.Q)
	e.c, e.rho, err = e.sk.Encrypt(rand.Reader, e.k)
	if err != nil {
		t.Fatal(err)
	}
	e.R = secp.BaseMult(big.NewInt(987654321))
	e.Rbar = e.R.Mul(e.k)
	return e
}

func (e *env) statement() *Statement {
	return &Statement{PK: e.pub, C: e.c, R: e.R, Rbar: e.Rbar, V: e.vSecret}
}

func TestPDL_ProveVerify(t *testing.T) {
	e := setup(t)
	proverView := &Statement{PK: e.sk.Public(), C: e.c, R: e.R, Rbar: e.Rbar, V: e.vPub}
	pf, err := Prove(session, proverView, e.k, e.rho, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(session, pf, e.statement()); err != nil {
		t.Fatalf("CRT verifier: %v", err)
	}
	plain := e.statement()
	plain.V = e.vPub
	if err := Verify(session, pf, plain); err != nil {
		t.Fatalf("plain verifier: %v", err)
	}
	// Encoding round trip.
	w := &wire.Writer{}
	pf.Encode(w)
	r := wire.NewReader(w.Bytes())
	back := Decode(r)
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	if err := Verify(session, back, e.statement()); err != nil {
		t.Fatalf("decoded proof: %v", err)
	}
}

func TestPDL_RejectsProofForOtherValues(t *testing.T) {
	e := setup(t)
	pf, err := Prove(session, &Statement{PK: e.sk.Public(), C: e.c, R: e.R, Rbar: e.Rbar, V: e.vPub}, e.k, e.rho, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	otherC, _, _ := e.sk.Encrypt(rand.Reader, e.k)
	// A false statement: R̄ for another k, proved "honestly" with the wrong witness.
	k2 := new(big.Int).Add(e.k, one)
	falsePf, err := Prove(session, &Statement{PK: e.sk.Public(), C: e.c, R: e.R, Rbar: e.R.Mul(k2), V: e.vPub}, k2, e.rho, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	copyOf := func(f func(p *Proof)) *Proof {
		cp := *pf
		for _, v := range []**big.Int{&cp.Z, &cp.U2, &cp.U3, &cp.S1, &cp.S2, &cp.S3} {
			*v = new(big.Int).Set(*v)
		}
		f(&cp)
		return &cp
	}
	q3 := new(big.Int).Exp(secp.Q, big.NewInt(3), nil)
	cases := []struct {
		name    string
		session []byte
		pf      *Proof
		st      func(st *Statement)
		want    error
	}{
		{"other session", []byte("other"), pf, nil, ErrInvalid},
		{"other ciphertext", session, pf, func(st *Statement) { st.C = otherC }, ErrInvalid},
		{"other Rbar", session, pf, func(st *Statement) { st.Rbar = st.Rbar.Add(secp.Generator()) }, ErrInvalid},
		{"other R", session, pf, func(st *Statement) { st.R = st.R.Add(secp.Generator()) }, ErrInvalid},
		{"other verifier parameters", session, pf, func(st *Statement) { st.V = e.other }, ErrInvalid},
		{"false statement", session, falsePf, func(st *Statement) { st.Rbar = e.R.Mul(k2) }, ErrInvalid},
		{"tampered z", session, copyOf(func(p *Proof) { p.Z.Add(p.Z, one) }), nil, ErrInvalid},
		{"tampered u1", session, copyOf(func(p *Proof) { p.U1 = p.U1.Add(secp.Generator()) }), nil, ErrInvalid},
		{"tampered u2", session, copyOf(func(p *Proof) { p.U2.Add(p.U2, one) }), nil, ErrInvalid},
		{"tampered u3", session, copyOf(func(p *Proof) { p.U3.Add(p.U3, one) }), nil, ErrInvalid},
		{"tampered s1", session, copyOf(func(p *Proof) { p.S1.Add(p.S1, one) }), nil, ErrInvalid},
		{"tampered s2", session, copyOf(func(p *Proof) { p.S2.Add(p.S2, one) }), nil, ErrInvalid},
		{"tampered s3", session, copyOf(func(p *Proof) { p.S3.Add(p.S3, one) }), nil, ErrInvalid},
		{"s1 above q³", session, copyOf(func(p *Proof) { p.S1.Add(q3, one) }), nil, ErrMalformed},
		{"s3 huge", session, copyOf(func(p *Proof) { p.S3.Lsh(p.S3, 3000) }), nil, ErrMalformed},
		{"z not a unit", session, copyOf(func(p *Proof) { p.Z.SetInt64(0) }), nil, ErrMalformed},
		{"u2 out of range", session, copyOf(func(p *Proof) { p.U2.Mul(e.pub.N, e.pub.N) }), nil, ErrMalformed},
		{"s2 = N", session, copyOf(func(p *Proof) { p.S2.Set(e.pub.N) }), nil, ErrMalformed},
		{"u1 identity", session, copyOf(func(p *Proof) { p.U1 = secp.Identity() }), nil, ErrMalformed},
		{"Rbar identity", session, pf, func(st *Statement) { st.Rbar = secp.Identity() }, ErrMalformed},
		{"ciphertext not a unit", session, pf, func(st *Statement) { st.C = new(big.Int).Set(e.pub.N) }, ErrMalformed},
		{"nil field", session, copyOf(func(p *Proof) { p.S3 = nil }), nil, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := e.statement()
			if tc.st != nil {
				tc.st(st)
			}
			if err := Verify(tc.session, tc.pf, st); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
