package hd_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

type bip32Case struct {
	Name   string `json:"name"`
	Parent string `json:"parent"`
	Path   string `json:"path"`
	Child  string `json:"child"`
}

func loadBIP32Cases(t *testing.T) []bip32Case {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wallet", "bip32_public.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var file struct {
		Cases []bip32Case `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no vectors in testdata/wallet/bip32_public.json")
	}
	return file.Cases
}

// decodeXpub returns the public key and chain code of a serialized extended
// public key. Decoding uses btcutil's hdkeychain so the vectors are read by an
// implementation other than the one under test.
func decodeXpub(t *testing.T, s string) (*secp256k1.PublicKey, []byte) {
	t.Helper()
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatalf("public key of %s: %v", s, err)
	}
	return pub, k.ChainCode()
}

func TestDerive_BIP32PublicVectors(t *testing.T) {
	for _, tc := range loadBIP32Cases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			parent, cc := decodeXpub(t, tc.Parent)
			wantPub, wantCC := decodeXpub(t, tc.Child)
			path, err := hd.ParsePath(tc.Path)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tc.Path, err)
			}
			child, childCC, tweak, err := hd.Derive(parent, cc, path)
			if err != nil {
				t.Fatalf("Derive: %v", err)
			}
			if !child.IsEqual(wantPub) {
				t.Errorf("child key = %x, want %x", child.SerializeCompressed(), wantPub.SerializeCompressed())
			}
			if !bytes.Equal(childCC, wantCC) {
				t.Errorf("child chain code = %x, want %x", childCC, wantCC)
			}
			assertTweak(t, parent, tweak, child)
		})
	}
}

// assertTweak checks child == parent + tweak·G.
func assertTweak(t *testing.T, parent *secp256k1.PublicKey, tweak [32]byte, child *secp256k1.PublicKey) {
	t.Helper()
	var eps secp256k1.ModNScalar
	if eps.SetBytes(&tweak) != 0 {
		t.Fatalf("tweak %x is not reduced mod n", tweak)
	}
	var p, e secp256k1.JacobianPoint
	parent.AsJacobian(&p)
	secp256k1.ScalarBaseMultNonConst(&eps, &e)
	secp256k1.AddNonConst(&p, &e, &p)
	p.ToAffine()
	if got := secp256k1.NewPublicKey(&p.X, &p.Y); !got.IsEqual(child) {
		t.Fatalf("parent + tweak·G = %x, child = %x", got.SerializeCompressed(), child.SerializeCompressed())
	}
}

func randomPath(r *mrand.Rand) hd.Path {
	p := make(hd.Path, r.IntN(5))
	for i := range p {
		if r.IntN(2) == 0 {
			p[i] = uint32(r.IntN(10))
		} else {
			p[i] = r.Uint32N(hd.HardenedOffset)
		}
	}
	return p
}

// TestDerive_MatchesHdkeychainPrivateDerivation compares Derive with btcutil's
// hdkeychain on ordinary keys: for an extended private key (x, c), hdkeychain's
// private child derivation must give the private key x + ε and the chain code
// that Derive computes from the public key alone.
func TestDerive_MatchesHdkeychainPrivateDerivation(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 64; i++ {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			t.Fatal(err)
		}
		master, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
		if err != nil {
			t.Fatal(err)
		}
		path := randomPath(r)

		want := master
		for _, idx := range path {
			if want, err = want.Derive(idx); err != nil {
				t.Fatalf("hdkeychain derive %s: %v", path, err)
			}
		}
		masterPub, err := master.ECPubKey()
		if err != nil {
			t.Fatal(err)
		}
		child, childCC, tweak, err := hd.Derive(masterPub, master.ChainCode(), path)
		if err != nil {
			t.Fatalf("Derive %s: %v", path, err)
		}

		wantPub, err := want.ECPubKey()
		if err != nil {
			t.Fatal(err)
		}
		if !child.IsEqual(wantPub) {
			t.Fatalf("path %s: child key = %x, hdkeychain = %x", path, child.SerializeCompressed(), wantPub.SerializeCompressed())
		}
		if !bytes.Equal(childCC, want.ChainCode()) {
			t.Fatalf("path %s: chain code = %x, hdkeychain = %x", path, childCC, want.ChainCode())
		}

		// The private child key must be x + ε (mod n).
		masterPriv, err := master.ECPrivKey()
		if err != nil {
			t.Fatal(err)
		}
		wantPriv, err := want.ECPrivKey()
		if err != nil {
			t.Fatal(err)
		}
		var eps secp256k1.ModNScalar
		eps.SetBytes(&tweak)
		sum := new(secp256k1.ModNScalar).Set(&masterPriv.Key)
		sum.Add(&eps)
		if !sum.Equals(&wantPriv.Key) {
			t.Fatalf("path %s: x + ε differs from hdkeychain's child private key", path)
		}
	}
}

// TestDerive_TweakGivesChildKey is the property the signing engine relies on:
// for a random private key x, (x + ε)·G is the derived child key.
func TestDerive_TweakGivesChildKey(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for i := 0; i < 64; i++ {
		priv, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		cc := make([]byte, hd.ChainCodeLen)
		if _, err := rand.Read(cc); err != nil {
			t.Fatal(err)
		}
		path := randomPath(r)
		child, _, tweak, err := hd.Derive(priv.PubKey(), cc, path)
		if err != nil {
			t.Fatalf("Derive %s: %v", path, err)
		}
		var eps secp256k1.ModNScalar
		eps.SetBytes(&tweak)
		x := new(secp256k1.ModNScalar).Set(&priv.Key)
		x.Add(&eps)
		if got := secp256k1.NewPrivateKey(x).PubKey(); !got.IsEqual(child) {
			t.Fatalf("path %s: (x+ε)·G = %x, child = %x", path, got.SerializeCompressed(), child.SerializeCompressed())
		}
	}
}

// TestDerive_SharesPlusTweakInterpolateToChildKey checks the claim in the
// Derive documentation with a 2-of-3 Shamir sharing: every pair of signers
// that adds ε to its share interpolates the child private key x + ε.
func TestDerive_SharesPlusTweakInterpolateToChildKey(t *testing.T) {
	n := secp256k1.S256().N
	x, _ := rand.Int(rand.Reader, n)
	a, _ := rand.Int(rand.Reader, n)
	share := func(id int64) *big.Int { // f(id) = x + a·id
		v := new(big.Int).Mul(a, big.NewInt(id))
		return v.Add(v, x).Mod(v, n)
	}
	var xb [32]byte
	x.FillBytes(xb[:])
	var xs secp256k1.ModNScalar
	xs.SetBytes(&xb)
	pub := secp256k1.NewPrivateKey(&xs).PubKey()
	cc := bytes.Repeat([]byte{7}, hd.ChainCodeLen)
	child, _, tweak, err := hd.Derive(pub, cc, hd.Path{0, 7})
	if err != nil {
		t.Fatal(err)
	}
	eps := new(big.Int).SetBytes(tweak[:])

	for _, pair := range [][2]int64{{1, 2}, {1, 3}, {2, 3}} {
		i, j := pair[0], pair[1]
		// λ_i = j/(j-i), λ_j = i/(i-j) at zero.
		lagrange := func(num, den int64) *big.Int {
			d := new(big.Int).Mod(big.NewInt(den), n)
			return d.ModInverse(d, n).Mul(d, big.NewInt(num))
		}
		li, lj := lagrange(j, j-i), lagrange(i, i-j)
		si := new(big.Int).Add(share(i), eps)
		sj := new(big.Int).Add(share(j), eps)
		sum := new(big.Int).Mul(li, si)
		sum.Add(sum, new(big.Int).Mul(lj, sj)).Mod(sum, n)
		var sb [32]byte
		sum.FillBytes(sb[:])
		var s secp256k1.ModNScalar
		s.SetBytes(&sb)
		if got := secp256k1.NewPrivateKey(&s).PubKey(); !got.IsEqual(child) {
			t.Fatalf("signers %d,%d: interpolated key does not match the child key", i, j)
		}
	}
}

func TestDerive_EmptyPathReturnsParent(t *testing.T) {
	priv, _ := secp256k1.GeneratePrivateKey()
	cc := bytes.Repeat([]byte{1}, hd.ChainCodeLen)
	child, childCC, tweak, err := hd.Derive(priv.PubKey(), cc, hd.Path{})
	if err != nil {
		t.Fatal(err)
	}
	if !child.IsEqual(priv.PubKey()) || !bytes.Equal(childCC, cc) || tweak != ([32]byte{}) {
		t.Fatal("empty path must return the parent key, its chain code and a zero tweak")
	}
	childCC[0] ^= 1
	if cc[0] != 1 {
		t.Fatal("Derive returned the caller's chain code slice instead of a copy")
	}
}

func TestDerive_RejectsBadInput(t *testing.T) {
	priv, _ := secp256k1.GeneratePrivateKey()
	cc := make([]byte, hd.ChainCodeLen)
	var fx, fy secp256k1.FieldVal
	fx.SetInt(1)
	fy.SetInt(1)
	offCurve := secp256k1.NewPublicKey(&fx, &fy)
	tooDeep := make(hd.Path, hd.MaxDepth+1)

	tests := []struct {
		name  string
		pub   *secp256k1.PublicKey
		cc    []byte
		path  hd.Path
		match error
	}{
		{"nil key", nil, cc, hd.Path{0}, hd.ErrInvalidKey},
		{"off-curve key", offCurve, cc, hd.Path{0}, hd.ErrInvalidKey},
		{"short chain code", priv.PubKey(), cc[:31], hd.Path{0}, hd.ErrInvalidKey},
		{"nil chain code", priv.PubKey(), nil, hd.Path{0}, hd.ErrInvalidKey},
		{"hardened index", priv.PubKey(), cc, hd.Path{0, hd.HardenedOffset}, hd.ErrHardened},
		{"too deep", priv.PubKey(), cc, tooDeep, hd.ErrMalformedPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			child, _, _, err := hd.Derive(tc.pub, tc.cc, tc.path)
			if !errors.Is(err, tc.match) {
				t.Fatalf("err = %v, want %v", err, tc.match)
			}
			if child != nil {
				t.Fatal("a child key was returned with an error")
			}
		})
	}
}

func TestDeriveKey_ParsesCompressedKey(t *testing.T) {
	cases := loadBIP32Cases(t)
	parent, cc := decodeXpub(t, cases[0].Parent)
	want, _ := decodeXpub(t, cases[0].Child)
	path, _ := hd.ParsePath(cases[0].Path)
	child, _, _, err := hd.DeriveKey(parent.SerializeCompressed(), cc, path)
	if err != nil || !child.IsEqual(want) {
		t.Fatalf("DeriveKey: child %v, err %v", child, err)
	}
	if _, _, _, err := hd.DeriveKey([]byte{2, 1, 2}, cc, path); !errors.Is(err, hd.ErrInvalidKey) {
		t.Fatalf("DeriveKey(garbage) err = %v, want ErrInvalidKey", err)
	}
}

func BenchmarkDerive(b *testing.B) {
	priv, _ := secp256k1.GeneratePrivateKey()
	cc, _ := hex.DecodeString("873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508")
	path := hd.Path{0, 7}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, err := hd.Derive(priv.PubKey(), cc, path); err != nil {
			b.Fatal(err)
		}
	}
}
