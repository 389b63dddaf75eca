package frost

import (
	"crypto/rand"
	"errors"
	"sync"
	"testing"
)

func TestKeyShare_WipeMakesItUnusable(t *testing.T) {
	for _, s := range allSuites {
		_, ks := testKey(t, s, 2, 3)
		nonce, _, err := ks[0].Commit(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		secret := ks[0].secret
		ks[0].Wipe()
		if !secret.isZero() {
			t.Errorf("%s: Wipe left the secret in place", s.ID())
		}
		if _, _, err := ks[0].Commit(rand.Reader); !errors.Is(err, ErrWiped) {
			t.Errorf("%s: Commit after Wipe = %v, want ErrWiped", s.ID(), err)
		}
		if _, err := ks[0].Sign(nonce, &SigningPackage{}); !errors.Is(err, ErrWiped) {
			t.Errorf("%s: Sign after Wipe = %v, want ErrWiped", s.ID(), err)
		}
		if _, err := ks[0].SecretBytes(); !errors.Is(err, ErrWiped) {
			t.Errorf("%s: SecretBytes after Wipe = %v, want ErrWiped", s.ID(), err)
		}
	}
}

func TestNonce_SignZeroesIt(t *testing.T) {
	_, ks := testKey(t, Secp256k1BIP340(), 2, 3)
	nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	st := nonces[1].st
	d, e := st.hiding, st.binding
	if _, err := ks[0].Sign(nonces[1], pkg); err != nil {
		t.Fatal(err)
	}
	if !d.isZero() || !e.isZero() || st.hiding != nil || st.binding != nil {
		t.Fatal("Sign left the nonce's scalars in place")
	}
}

func TestNonce_WipeDiscardsIt(t *testing.T) {
	_, ks := testKey(t, Ed25519(), 2, 3)
	nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	nonces[1].Wipe()
	if _, err := ks[0].Sign(nonces[1], pkg); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("Sign with a wiped nonce = %v, want ErrNonceUsed", err)
	}
}

// TestNonce_ConcurrentSignsUseItOnce races Sign calls on copies of one nonce
// with two different messages: exactly one may produce a share.
func TestNonce_ConcurrentSignsUseItOnce(t *testing.T) {
	_, ks := testKey(t, Ed25519(), 2, 3)
	nonces, pkg := commitAll(t, []byte("pay Alice"), ks[0], ks[1])
	other := &SigningPackage{Message: []byte("pay Mallory"), Commitments: pkg.Commitments}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, used := 0, 0
	for i := range 8 {
		n := *nonces[1]
		p := pkg
		if i%2 == 1 {
			p = other
		}
		wg.Go(func() {
			_, err := ks[0].Sign(&n, p)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrNonceUsed):
				used++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || used != 7 {
		t.Fatalf("%d shares and %d refusals, want 1 and 7", ok, used)
	}
}

func TestSecretTypes_NeverPrintSecrets(t *testing.T) {
	d, err := Deal(Secp256k1(), nil, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	share1, _ := d.Share(1)
	dkg, _, err := NewDKG(DKGConfig{Suite: Secp256k1(), Self: 1, Participants: []Identifier{1, 2}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	coeff := dkg.coeffs[0].bytes()
	msg := &DKGRound2{suite: Secp256k1(), from: 1, to: 2, share: d.shares[2]}
	share2 := d.shares[2].bytes()
	for _, v := range []any{d, *d, dkg, *dkg, msg, *msg} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			out := sprintf(verb, v)
			for _, secret := range [][]byte{share1, share2, coeff} {
				if bytesContainHex(out, secret) {
					t.Errorf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
		}
	}
}
