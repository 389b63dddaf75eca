package frost

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSign_EverySubsetAboveThresholdSigns(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			pub, ks := testKey(t, s, 2, 3)
			for _, signers := range [][]*KeyShare{{ks[0], ks[1]}, {ks[2], ks[0]}, {ks[1], ks[2]}, ks} {
				msg := []byte("withdraw 1 BTC")
				nonces, pkg := commitAll(t, msg, signers...)
				sig, err := pub.Aggregate(pkg, signAll(t, nonces, pkg, signers...))
				if err != nil {
					t.Fatal(err)
				}
				key, _ := pub.SigningKey(nil)
				if err := s.Verify(key, msg, sig); err != nil {
					t.Fatal(err)
				}
				if s == Ed25519() && !ed25519.Verify(key, msg, sig) {
					t.Fatal("crypto/ed25519 rejects the signature")
				}
				if err := s.Verify(key, []byte("withdraw 2 BTC"), sig); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("Verify of another message = %v, want ErrInvalidSignature", err)
				}
			}
		})
	}
}

func TestSign_RefusesUsedNonce(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			_, ks := testKey(t, s, 2, 3)
			nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
			n := nonces[1]
			copied := *n // a copy shares the once-only state
			if _, err := ks[0].Sign(n, pkg); err != nil {
				t.Fatal(err)
			}
			if !n.Used() {
				t.Error("nonce not marked used after Sign")
			}
			for _, again := range []*Nonce{n, &copied, {}, nil} {
				if _, err := ks[0].Sign(again, pkg); !errors.Is(err, ErrNonceUsed) {
					t.Errorf("second Sign = %v, want ErrNonceUsed", err)
				}
			}
		})
	}
}

func TestSign_ConsumesNonceEvenWhenPackageIsRejected(t *testing.T) {
	_, ks := testKey(t, Ed25519(), 2, 3)
	nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	bad := &SigningPackage{Message: pkg.Message, Commitments: pkg.Commitments[:1]}
	if _, err := ks[0].Sign(nonces[1], bad); !errors.Is(err, ErrInvalidPackage) {
		t.Fatalf("Sign with one signer = %v, want ErrInvalidPackage", err)
	}
	if _, err := ks[0].Sign(nonces[1], pkg); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("Sign after a rejected package = %v, want ErrNonceUsed", err)
	}
}

func TestSign_RejectsPackageWithoutItsCommitment(t *testing.T) {
	_, ks := testKey(t, Secp256k1(), 2, 3)
	nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	// The coordinator substitutes another commitment of signer 1.
	_, other, err := ks[0].Commit(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	swapped := &SigningPackage{Message: pkg.Message, Commitments: []*Commitment{other, pkg.Commitments[1]}}
	if _, err := ks[0].Sign(nonces[1], swapped); !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("Sign = %v, want ErrNonceMismatch", err)
	}
	// A nonce of signer 2 used by signer 3.
	if _, err := ks[2].Sign(nonces[2], pkg); !errors.Is(err, ErrNonceMismatch) {
		t.Fatalf("Sign with another signer's nonce = %v, want ErrNonceMismatch", err)
	}
}

func TestSign_RejectsBadPackages(t *testing.T) {
	pub, ks := testKey(t, Ed25519(), 2, 3)
	_, other := testKey(t, Secp256k1(), 2, 3)
	_, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	_, kpkg := commitAll(t, []byte("m"), other[0], other[1])
	for _, tc := range []struct {
		name string
		pkg  *SigningPackage
		want error
	}{
		{"nil", nil, ErrInvalidPackage},
		{"below threshold", &SigningPackage{Commitments: pkg.Commitments[:1]}, ErrInvalidPackage},
		{"duplicate signer", &SigningPackage{Commitments: []*Commitment{pkg.Commitments[0], pkg.Commitments[0]}}, ErrInvalidPackage},
		{"nil commitment", &SigningPackage{Commitments: []*Commitment{pkg.Commitments[0], nil}}, ErrInvalidPackage},
		{"other suite", &SigningPackage{Commitments: kpkg.Commitments}, ErrSuiteMismatch},
		{"taproot outside BIP-340", &SigningPackage{Commitments: pkg.Commitments, Taproot: &Taproot{}}, ErrInvalidPackage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := pub.VerifyShare(tc.pkg, &SignatureShare{suite: Ed25519(), id: 1, z: Ed25519().g.newScalar()}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAggregate_NamesSenderOfBadShare(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			pub, ks := testKey(t, s, 3, 4)
			nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1], ks[3])
			shares := signAll(t, nonces, pkg, ks[0], ks[1], ks[3])
			// Party 4 adds one to its share.
			one := s.g.newScalar().setUint16(1)
			shares[2].z = s.g.newScalar().add(shares[2].z, one)
			_, err := pub.Aggregate(pkg, shares)
			var ce *CulpritError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidShare) || !slices.Equal(ce.Parties, []Identifier{4}) {
				t.Fatalf("Aggregate = %v, want ErrInvalidShare naming party 4", err)
			}
			if err := pub.VerifyShare(pkg, shares[0]); err != nil {
				t.Errorf("VerifyShare of an honest share: %v", err)
			}
			if err := pub.VerifyShare(pkg, shares[2]); !errors.As(err, &ce) || ce.Parties[0] != 4 {
				t.Errorf("VerifyShare of the bad share = %v", err)
			}
		})
	}
}

func TestAggregate_NamesMissingAndUnexpectedShares(t *testing.T) {
	pub, ks := testKey(t, Ed25519(), 2, 3)
	nonces, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	shares := signAll(t, nonces, pkg, ks[0], ks[1])
	var ce *CulpritError
	_, err := pub.Aggregate(pkg, shares[:1])
	if !errors.Is(err, ErrMissingShare) || !errors.As(err, &ce) || !slices.Equal(ce.Parties, []Identifier{2}) {
		t.Errorf("Aggregate without share 2 = %v", err)
	}
	_, err = pub.Aggregate(pkg, []*SignatureShare{shares[0], shares[1], shares[1]})
	if !errors.Is(err, ErrUnexpectedShare) || !errors.As(err, &ce) || !slices.Equal(ce.Parties, []Identifier{2}) {
		t.Errorf("Aggregate with share 2 twice = %v", err)
	}
	stranger := &SignatureShare{suite: Ed25519(), id: 3, z: shares[0].z}
	_, err = pub.Aggregate(pkg, append(shares, stranger))
	if !errors.Is(err, ErrUnexpectedShare) || !errors.As(err, &ce) || !slices.Equal(ce.Parties, []Identifier{3}) {
		t.Errorf("Aggregate with a share of a non-signer = %v", err)
	}
}

func TestKeyShare_NeverPrintsItsSecret(t *testing.T) {
	for _, s := range allSuites {
		_, ks := testKey(t, s, 2, 3)
		secret, _ := ks[0].SecretBytes()
		n, _, _ := ks[0].Commit(rand.Reader)
		for _, v := range []any{ks[0], *ks[0], n, *n, n.st.hiding} {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
				out := sprintf(verb, v)
				if bytesContainHex(out, secret) || bytesContainHex(out, n.st.hiding.bytes()) {
					t.Errorf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
		}
	}
}

func bytesContainHex(out string, secret []byte) bool {
	return strings.Contains(out, fmt.Sprintf("%x", secret[:8])) || strings.Contains(out, fmt.Sprint(secret[:8])[1:20])
}

func sprintf(verb string, v any) string { return fmt.Sprintf(verb, v) }
