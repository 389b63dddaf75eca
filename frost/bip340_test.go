package frost

import (
	"bytes"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

// TestBIP340Vectors runs every row of BIP-340's test-vectors.csv
// (testdata/bip340-test-vectors.csv) through the BIP-340 mode's Verify, and
// checks the public key of the rows that list a secret key.
func TestBIP340Vectors(t *testing.T) {
	f, err := os.Open("testdata/bip340-test-vectors.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 20 {
		t.Fatalf("%d rows, want a header and 19 vectors", len(rows))
	}
	for _, row := range rows[1:] {
		index, sk, pk, msg, sig, want, comment := row[0], row[1], row[2], row[4], row[5], row[6] == "TRUE", row[7]
		t.Run(index, func(t *testing.T) {
			if sk != "" {
				s, err := Secp256k1().g.decodeScalar(unhex(t, sk))
				if err != nil {
					t.Fatal(err)
				}
				if got := new(kElement).scalarBaseMult(s).(*kElement).xBytes(); !bytes.Equal(got, unhex(t, pk)) {
					t.Errorf("public key = %x, want %s", got, pk)
				}
			}
			err := Secp256k1BIP340().Verify(unhex(t, pk), unhex(t, msg), unhex(t, sig))
			if got := err == nil; got != want {
				t.Errorf("Verify = %v, want valid=%t (%s)", err, want, comment)
			}
			if err != nil && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("Verify error %v does not wrap ErrInvalidSignature", err)
			}
		})
	}
}

// TestTaprootTweakVectors checks the tweak and the output key against the
// scriptPubKey cases of BIP-341's wallet-test-vectors.json.
func TestTaprootTweakVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/bip341-scriptpubkey.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Internal   string `json:"internal_pubkey"`
			MerkleRoot string `json:"merkle_root"`
			Tweak      string `json:"tweak"`
			Tweaked    string `json:"tweaked_pubkey"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for i, v := range file.Vectors {
		internal := append([]byte{2}, unhex(t, v.Internal)...)
		pub, err := NewPublicKey(Secp256k1BIP340(), 1, internal, map[Identifier][]byte{1: internal})
		if err != nil {
			t.Fatal(err)
		}
		root := unhex(t, v.MerkleRoot)
		tw, err := taprootTweak(unhex(t, v.Internal), root)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(tw.bytes()); got != v.Tweak {
			t.Errorf("case %d: tweak = %s, want %s", i, got, v.Tweak)
		}
		q, err := pub.TaprootOutputKey(Taproot{MerkleRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(q); got != v.Tweaked {
			t.Errorf("case %d: output key = %s, want %s", i, got, v.Tweaked)
		}
	}
}

// TestBIP340_ThresholdSignaturesVerifyWithBtcd signs 2-of-3 in the BIP-340
// mode without a tweak, with a key-path-only Taproot tweak and with a script
// tree, over keys and nonces of both Y parities, and verifies every
// signature with btcd's schnorr.Verify under the key btcd derives itself.
func TestBIP340_ThresholdSignaturesVerifyWithBtcd(t *testing.T) {
	s := Secp256k1BIP340()
	root := chainhash.HashB([]byte("script tree"))
	seenOdd, seenEven := false, false
	for trial := 0; trial < 12 || !(seenOdd && seenEven); trial++ {
		if trial > 64 {
			t.Fatal("no key of each parity in 64 trials")
		}
		pub, ks := testKey(t, s, 2, 3)
		odd := pub.Bytes()[0] == 3
		seenOdd, seenEven = seenOdd || odd, seenEven || !odd
		internal, err := schnorr.ParsePubKey(mustXOnly(t, pub))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			tr   *Taproot
			want *btcec.PublicKey
		}{
			{"untweaked", nil, internal},
			{"key path only", &Taproot{}, txscript.ComputeTaprootKeyNoScript(internal)},
			{"script tree", &Taproot{MerkleRoot: root}, txscript.ComputeTaprootOutputKey(internal, root)},
		} {
			key, err := pub.SigningKey(tc.tr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, schnorr.SerializePubKey(tc.want)) {
				t.Fatalf("%s: signing key %x, btcd derives %x", tc.name, key, schnorr.SerializePubKey(tc.want))
			}
			msg := chainhash.HashB([]byte(tc.name))
			signers := []*KeyShare{ks[trial%3], ks[(trial+1)%3]}
			nonces, pkg := commitAll(t, msg, signers...)
			pkg.Taproot = tc.tr
			shares := signAll(t, nonces, pkg, signers...)
			for _, sh := range shares {
				if err := pub.VerifyShare(pkg, sh); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			sig, err := pub.Aggregate(pkg, shares)
			if err != nil {
				t.Fatalf("%s (odd key %t): %v", tc.name, odd, err)
			}
			parsed, err := schnorr.ParseSignature(sig)
			if err != nil {
				t.Fatal(err)
			}
			if !parsed.Verify(msg, tc.want) {
				t.Fatalf("%s (odd key %t): btcd rejects the signature", tc.name, odd)
			}
			if err := s.Verify(key, msg, sig); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	}
}

func TestBIP340_RejectsBadTaprootRoot(t *testing.T) {
	pub, ks := testKey(t, Secp256k1BIP340(), 2, 3)
	_, pkg := commitAll(t, []byte("m"), ks[0], ks[1])
	pkg.Taproot = &Taproot{MerkleRoot: make([]byte, 31)}
	if _, err := pub.Aggregate(pkg, nil); !errors.Is(err, ErrInvalidPackage) {
		t.Fatalf("Aggregate with a 31-byte root = %v, want ErrInvalidPackage", err)
	}
	if _, err := pub.TaprootOutputKey(Taproot{MerkleRoot: make([]byte, 33)}); !errors.Is(err, ErrInvalidPackage) {
		t.Fatalf("TaprootOutputKey with a 33-byte root = %v, want ErrInvalidPackage", err)
	}
	edPub, _ := testKey(t, Ed25519(), 2, 3)
	if _, err := edPub.TaprootOutputKey(Taproot{}); !errors.Is(err, ErrSuiteMismatch) {
		t.Fatalf("TaprootOutputKey of an Ed25519 key = %v, want ErrSuiteMismatch", err)
	}
}

func mustXOnly(t *testing.T, p *PublicKey) []byte {
	t.Helper()
	x, err := p.XOnly()
	if err != nil {
		t.Fatal(err)
	}
	return x
}
