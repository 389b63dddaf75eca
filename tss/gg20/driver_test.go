package gg20

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
)

// keys returns fresh copies of a committee's keygen outputs.
func keys(t testing.TB, committee string) []*keygen.LocalPartySaveData {
	t.Helper()
	k, err := fixtures.Keys(committee)
	if err != nil {
		t.Fatalf("load %s keygen fixtures (run go run ./internal/cmd/genkeygen): %v", committee, err)
	}
	return k
}

func sessionID(t testing.TB) [32]byte {
	var sid [32]byte
	if _, err := rand.Read(sid[:]); err != nil {
		t.Fatal(err)
	}
	return sid
}

var (
	precompMu sync.Mutex
	precomp   = map[string]*Precomputed{}
)

// precomputed returns the tables of a party, built once per test binary.
func precomputed(k *keygen.LocalPartySaveData) *Precomputed {
	precompMu.Lock()
	defer precompMu.Unlock()
	id := fmt.Sprint(len(k.Ks), k.NTildei.Text(16))
	if pc, ok := precomp[id]; ok {
		return pc
	}
	pc := Precompute(k)
	precomp[id] = pc
	return pc
}

// newPresigners makes one Presigner per signer; signers are indices into
// ks (ascending).
func newPresigners(t testing.TB, ks []*keygen.LocalPartySaveData, signers []int, tweak *big.Int) []*Presigner {
	t.Helper()
	sid := sessionID(t)
	ids := make([]*big.Int, len(signers))
	for i, s := range signers {
		ids[i] = ks[s].ShareID
	}
	out := make([]*Presigner, len(signers))
	for i, s := range signers {
		p, err := NewPresigner(Config{SessionID: sid, Key: ks[s], Signers: ids, Tweak: tweak, Precomputed: precomputed(ks[s])})
		if err != nil {
			t.Fatalf("NewPresigner for signer %d: %v", i, err)
		}
		out[i] = p
	}
	return out
}

// network delivers messages between Presigners in one process. Every
// message is a broadcast; it is handed to every other party in turn.
type network struct {
	parties []*Presigner
	// tamper, if set, may change a message once, before it is delivered to
	// anyone (a cheating sender).
	tamper func(m *Message)
	// after, if set, runs after each Start or Handle of party i, to let a
	// test change a cheater's state between rounds.
	after func(i int, p *Presigner)
	// drop, if set, may withhold a message from everyone (a silent sender).
	drop func(m Message) bool
	errs []error
}

func newNetwork(parties []*Presigner) *network {
	return &network{parties: parties, errs: make([]error, len(parties))}
}

func (nw *network) send(queue *[]Message, msgs []Message) {
	for _, m := range msgs {
		m.Payload = bytes.Clone(m.Payload)
		if nw.tamper != nil {
			nw.tamper(&m)
		}
		if nw.drop != nil && nw.drop(m) {
			continue
		}
		*queue = append(*queue, m)
	}
}

// run starts every party and delivers messages until none are left. It
// returns each party's first error.
func (nw *network) run(t testing.TB) []error {
	t.Helper()
	var queue []Message
	for i, p := range nw.parties {
		out, err := p.Start()
		if err != nil {
			nw.errs[i] = err
			continue
		}
		if nw.after != nil {
			nw.after(i, p)
		}
		nw.send(&queue, out)
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		for i, p := range nw.parties {
			if i == m.From || nw.errs[i] != nil {
				continue
			}
			out, err := p.Handle(m)
			if err != nil {
				nw.errs[i] = err
				continue
			}
			if nw.after != nil {
				nw.after(i, p)
			}
			nw.send(&queue, out)
		}
	}
	return nw.errs
}

// presign runs a whole presigning session and returns the presignatures.
func presign(t testing.TB, ks []*keygen.LocalPartySaveData, signers []int, tweak *big.Int) []*Presignature {
	t.Helper()
	ps := newPresigners(t, ks, signers, tweak)
	errs := newNetwork(ps).run(t)
	out := make([]*Presignature, len(ps))
	for i, p := range ps {
		if errs[i] != nil {
			t.Fatalf("signer %d: %v", i, errs[i])
		}
		if !p.Done() {
			t.Fatalf("signer %d not done, waiting for %v", i, p.Waiting())
		}
		ps, err := p.Presignature()
		if err != nil {
			t.Fatalf("signer %d: %v", i, err)
		}
		out[i] = ps
	}
	return out
}

// signAll makes every signer's share of digest.
func signAll(t testing.TB, pss []*Presignature, digest []byte) []*big.Int {
	t.Helper()
	shares := make([]*big.Int, len(pss))
	for i, ps := range pss {
		s, err := ps.SignShare(digest)
		if err != nil {
			t.Fatalf("signer %d: SignShare: %v", i, err)
		}
		shares[i] = s
	}
	return shares
}

// checkSignature verifies (r, s) for digest under the compressed public key
// pub with dcrd's verifier, and that the recovery ID recovers pub.
func checkSignature(t testing.TB, pub, digest []byte, r, s *big.Int, recID byte) {
	t.Helper()
	pk, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var rs, ss [32]byte
	r.FillBytes(rs[:])
	s.FillBytes(ss[:])
	var rsc, ssc secp256k1.ModNScalar
	rsc.SetBytes(&rs)
	ssc.SetBytes(&ss)
	if !ecdsa.NewSignature(&rsc, &ssc).Verify(digest, pk) {
		t.Fatal("signature does not verify under the public key")
	}
	if s.Cmp(new(big.Int).Rsh(secp.Q, 1)) > 0 {
		t.Fatal("signature s is not low")
	}
	compact := make([]byte, 65)
	compact[0] = 27 + 4 + recID
	copy(compact[1:33], rs[:])
	copy(compact[33:], ss[:])
	rec, compressed, err := ecdsa.RecoverCompact(compact, digest)
	if err != nil {
		t.Fatalf("recover public key: %v", err)
	}
	if !compressed || !bytes.Equal(rec.SerializeCompressed(), pub) {
		t.Fatal("recovery ID does not recover the public key")
	}
}

func digestOf(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// subsets returns all subsets of {0..n-1} with at least m elements.
func subsets(n, m int) [][]int {
	var out [][]int
	for mask := 0; mask < 1<<n; mask++ {
		var s []int
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				s = append(s, i)
			}
		}
		if len(s) >= m {
			out = append(out, s)
		}
	}
	return out
}

// culprits asserts that err is a *CulpritError naming exactly want and
// wrapping sentinel.
func assertCulprit(t testing.TB, who int, err error, sentinel error, want ...int) {
	t.Helper()
	var ce *CulpritError
	if !errors.As(err, &ce) {
		t.Fatalf("signer %d: got %v, want a *CulpritError", who, err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("signer %d: got %v, want %v", who, err, sentinel)
	}
	if len(ce.Culprits) != len(want) {
		t.Fatalf("signer %d: culprits %v, want %v (%v)", who, ce.Culprits, want, err)
	}
	for i := range want {
		if ce.Culprits[i] != want[i] {
			t.Fatalf("signer %d: culprits %v, want %v (%v)", who, ce.Culprits, want, err)
		}
	}
}
