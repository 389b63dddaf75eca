package gg20

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/arith"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// MaxSigners bounds the number of signers of one run.
const MaxSigners = 64

// Config is the input of one presigning run.
type Config struct {
	// SessionID is fresh for every run and agreed by all signers (for
	// example the session layer's session ID). It is bound into every
	// proof, commitment and hash the run makes; tss-lib's own session
	// nonce is constant, so this is what keeps messages of one run from
	// being replayed into another.
	SessionID [32]byte
	// Key is this party's tss-lib v2.0.2 keygen output for the whole
	// committee. It is read, never modified; the run keeps no reference to
	// its secret fields after [NewPresigner] returns.
	Key *keygen.LocalPartySaveData
	// Signers are the share IDs (values of Key.Ks) of the signers, sorted
	// ascending. They must include Key.ShareID and be enough to sign (at
	// least the threshold M); the signer index of a party is its position
	// here.
	Signers []*big.Int
	// Tweak is an additive key-derivation tweak ε (nil for none). The
	// presignature is then for the derived key y' = y + ε·g: every signer
	// uses xᵢ + ε as its share, as tss-lib's key-derivation delta does.
	Tweak *big.Int
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Precomputed, if set, holds the committee's prepared ring-Pedersen
	// parameters (see [Precompute]); without it each run prepares its own.
	Precomputed *Precomputed
}

// setup is the public, immutable view of the committee for one run, plus
// this party's secret key material with CRT arithmetic.
type setup struct {
	sid   [32]byte
	ctx   [32]byte // hash of everything the run is bound to
	n     int
	self  int
	ids   []*big.Int // share IDs of the signers
	pk    []*arith.Paillier
	rp    []*arith.RingPedersen
	W     []*secp.Point // Wⱼ = λⱼ·(Xⱼ + ε·g)
	y     *secp.Point   // y' = y + ε·g
	tweak *big.Int      // ε mod q (zero for none)
	h     *secp.Point
	rand  io.Reader

	sk *arith.PaillierSecret
	w  *big.Int // wᵢ = λᵢ·(xᵢ + ε) mod q
}

func configErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
}

// newSetup validates cfg and derives the run's setup.
func newSetup(cfg Config) (*setup, error) {
	key := cfg.Key
	if key == nil {
		return nil, configErr("no keygen output")
	}
	if cfg.SessionID == ([32]byte{}) {
		return nil, configErr("session ID is all zero; use a fresh random session ID")
	}
	nAll := len(key.Ks)
	if nAll < 2 || len(key.NTildej) != nAll || len(key.H1j) != nAll || len(key.H2j) != nAll ||
		len(key.BigXj) != nAll || len(key.PaillierPKs) != nAll {
		return nil, configErr("keygen output has inconsistent committee vectors")
	}
	if key.ShareID == nil || key.Xi == nil || key.ECDSAPub == nil || key.PaillierSK == nil {
		return nil, configErr("keygen output lacks the share ID, share, public key or Paillier key")
	}
	q := secp.Q
	if key.Xi.Sign() <= 0 || key.Xi.Cmp(q) >= 0 {
		return nil, configErr("secret share out of range")
	}
	// Map share IDs to keygen positions.
	pos := map[string]int{}
	for j, k := range key.Ks {
		if k == nil || k.Sign() <= 0 || k.Cmp(q) >= 0 {
			return nil, configErr("keygen share ID %d out of range", j)
		}
		s := k.String()
		if _, dup := pos[s]; dup {
			return nil, configErr("keygen output lists share ID %s twice", s)
		}
		pos[s] = j
	}
	n := len(cfg.Signers)
	if n < 2 || n > MaxSigners || n > nAll {
		return nil, configErr("%d signers; need 2 to min(%d, committee size %d)", n, MaxSigners, nAll)
	}
	st := &setup{sid: cfg.SessionID, n: n, self: -1, h: generatorH()}
	idx := make([]int, n)
	for i, id := range cfg.Signers {
		if id == nil {
			return nil, configErr("signer %d is nil", i)
		}
		if i > 0 && id.Cmp(cfg.Signers[i-1]) <= 0 {
			return nil, configErr("signers are not sorted ascending without duplicates")
		}
		j, ok := pos[id.String()]
		if !ok {
			return nil, configErr("signer %s is not a member of the committee", id)
		}
		idx[i] = j
		st.ids = append(st.ids, new(big.Int).Set(id))
		if id.Cmp(key.ShareID) == 0 {
			st.self = i
		}
	}
	if st.self < 0 {
		return nil, configErr("this party (share ID %s) is not among the signers", key.ShareID)
	}
	me := idx[st.self]

	// Paillier and ring-Pedersen parameters of every signer.
	seenN := map[string]bool{}
	for i, j := range idx {
		N := key.PaillierPKs[j]
		if N == nil || N.N == nil || N.N.BitLen() < arith.MinModulusBits || N.N.BitLen() > arith.MaxModulusBits || N.N.Bit(0) == 0 {
			return nil, configErr("signer %d: Paillier modulus must be odd and of 2048 to 4096 bits", i)
		}
		if key.NTildej[j] == nil || seenN[N.N.String()] || seenN[key.NTildej[j].String()] {
			return nil, configErr("signer %d: Paillier modulus or Ñ missing or reused", i)
		}
		seenN[N.N.String()], seenN[key.NTildej[j].String()] = true, true
		if i == st.self {
			continue
		}
		st.pk = append(st.pk, arith.NewPaillier(N.N))
		rp := cfg.Precomputed.lookup(key.NTildej[j], key.H1j[j], key.H2j[j])
		if rp == nil {
			var err error
			if rp, err = arith.NewRingPedersen(key.NTildej[j], key.H1j[j], key.H2j[j]); err != nil {
				return nil, configErr("signer %d: %v", i, err)
			}
		}
		st.rp = append(st.rp, rp)
	}
	// Own keys, with CRT.
	if key.PaillierSK.N == nil || key.PaillierSK.N.Cmp(key.PaillierPKs[me].N) != 0 {
		return nil, configErr("own Paillier key does not match the committee's copy")
	}
	sk, err := arith.NewPaillierSecret(key.PaillierSK)
	if err != nil {
		return nil, configErr("own Paillier key: %v", err)
	}
	if key.NTildei == nil || key.NTildei.Cmp(key.NTildej[me]) != 0 || key.H1i == nil || key.H1i.Cmp(key.H1j[me]) != 0 ||
		key.H2i == nil || key.H2i.Cmp(key.H2j[me]) != 0 {
		return nil, configErr("own Ñ, h1, h2 do not match the committee's copy")
	}
	var ownRP *arith.RingPedersen
	if key.P != nil && key.Q != nil {
		ownRP, err = arith.NewRingPedersenSecret(key.NTildei, key.H1i, key.H2i, key.P, key.Q)
	} else {
		// Pre-parameters without the factors of Ñ: verify without the CRT.
		ownRP, err = arith.NewRingPedersen(key.NTildei, key.H1i, key.H2i)
	}
	if err != nil {
		return nil, configErr("own ring-Pedersen parameters: %v", err)
	}
	// Insert own entries at position self.
	st.pk = insertAt(st.pk, st.self, sk.Public())
	st.rp = insertAt(st.rp, st.self, ownRP)
	st.sk = sk

	// Tweak.
	st.tweak = new(big.Int)
	if cfg.Tweak != nil {
		if cfg.Tweak.Sign() < 0 || cfg.Tweak.Cmp(q) >= 0 {
			return nil, configErr("tweak out of range [0, q)")
		}
		st.tweak.Set(cfg.Tweak)
	}
	epsG := secp.BaseMultVarTime(st.tweak)

	// Public key and public shares.
	yx, yy := key.ECDSAPub.X(), key.ECDSAPub.Y()
	y, err := secp.FromXY(yx, yy)
	if err != nil || y.IsIdentity() {
		return nil, configErr("public key is not a curve point")
	}
	X := make([]*secp.Point, n)
	for i, j := range idx {
		if key.BigXj[j] == nil {
			return nil, configErr("signer %d: public share missing", i)
		}
		p, err := secp.FromXY(key.BigXj[j].X(), key.BigXj[j].Y())
		if err != nil || p.IsIdentity() {
			return nil, configErr("signer %d: public share is not a curve point", i)
		}
		X[i] = p
	}
	if !secp.BaseMult(key.Xi).Equal(X[st.self]) {
		return nil, configErr("own secret share does not match the committee's public share")
	}
	st.W = make([]*secp.Point, n)
	sum := secp.Identity()
	for i := range X {
		lambda := lagrange(st.ids, i)
		st.W[i] = X[i].Add(epsG).MulVarTime(lambda)
		if st.W[i].IsIdentity() {
			return nil, configErr("signer %d: weighted public share is the identity", i)
		}
		sum = sum.Add(st.W[i])
	}
	st.y = y.Add(epsG)
	if st.y.IsIdentity() {
		return nil, configErr("tweaked public key is the identity")
	}
	if !sum.Equal(st.y) {
		return nil, configErr("the signers' weighted public shares do not add up to the public key: too few signers for the threshold, or inconsistent keygen output")
	}
	lambda := lagrange(st.ids, st.self)
	// wᵢ = λᵢ·(xᵢ + ε) mod q, in constant time (xᵢ is the key share).
	w := secp.NewModQ(key.Xi)
	w.Add(secp.NewModQ(st.tweak)).Mul(secp.NewModQ(lambda))
	st.w = w.Int()
	w.Wipe()

	if cfg.Rand == nil {
		st.rand = rand.Reader
	} else {
		st.rand = &lockedReader{r: cfg.Rand}
	}
	st.ctx = st.context()
	return st, nil
}

// lagrange returns λᵢ = ∏_{j≠i} idⱼ/(idⱼ − idᵢ) mod q, the coefficient of
// signer i at 0.
func lagrange(ids []*big.Int, i int) *big.Int {
	q := secp.Q
	num, den := big.NewInt(1), big.NewInt(1)
	for j, id := range ids {
		if j == i {
			continue
		}
		num.Mul(num, id).Mod(num, q)
		d := new(big.Int).Sub(id, ids[i])
		den.Mul(den, d).Mod(den, q)
	}
	den.ModInverse(den, q)
	return num.Mul(num, den).Mod(num, q)
}

// context hashes what the run is bound to: the session ID, the signers, the
// tweaked public key, the tweak, and every signer's Paillier and
// ring-Pedersen parameters and weighted public share.
func (st *setup) context() [32]byte {
	h := sha256.New()
	write := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	write([]byte("keyquorum/gg20/presign/context/v1"))
	write(st.sid[:])
	write(st.y.Bytes())
	write(st.tweak.Bytes())
	for i := 0; i < st.n; i++ {
		write(st.ids[i].Bytes())
		write(st.pk[i].N.Bytes())
		write(st.rp[i].N().Bytes())
		write(st.rp[i].H1.Bytes())
		write(st.rp[i].H2.Bytes())
		write(st.W[i].Bytes())
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// session returns the session bytes of one proof: the run context, a label
// and the prover's and verifier's signer indices (−1 for a broadcast proof
// checked by everyone).
func (st *setup) session(label string, prover, verifier int) []byte {
	b := make([]byte, 0, 32+len(label)+10)
	b = append(b, st.ctx[:]...)
	b = append(b, label...)
	b = binary.BigEndian.AppendUint32(b, uint32(int32(prover)))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(verifier)))
	return b
}

func insertAt[T any](s []T, i int, v T) []T {
	s = append(s, v)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// lockedReader serialises reads of a caller-supplied random source, which
// need not be safe for the concurrent use the rounds make of it.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}
