package gg20

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdleq"
)

func TestNewPresigner_RejectsBadConfig(t *testing.T) {
	ks := keys(t, "3-of-5")
	sid := sessionID(t)
	ids := func(idx ...int) []*big.Int {
		out := make([]*big.Int, len(idx))
		for i, j := range idx {
			out[i] = ks[j].ShareID
		}
		return out
	}
	withKey := func(f func(k *keygen.LocalPartySaveData)) *keygen.LocalPartySaveData {
		k := keys(t, "3-of-5")[0]
		f(k)
		return k
	}
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{SessionID: sid, Signers: ids(0, 1, 2)}},
		{"zero session ID", Config{Key: ks[0], Signers: ids(0, 1, 2)}},
		{"self not a signer", Config{SessionID: sid, Key: ks[0], Signers: ids(1, 2, 3)}},
		{"unsorted signers", Config{SessionID: sid, Key: ks[0], Signers: ids(0, 2, 1)}},
		{"duplicate signer", Config{SessionID: sid, Key: ks[0], Signers: ids(0, 1, 1)}},
		{"one signer", Config{SessionID: sid, Key: ks[0], Signers: ids(0)}},
		{"below threshold", Config{SessionID: sid, Key: ks[0], Signers: ids(0, 1)}},
		{"stranger", Config{SessionID: sid, Key: ks[0], Signers: append(ids(0, 1), big.NewInt(99))}},
		{"tweak out of range", Config{SessionID: sid, Key: ks[0], Signers: ids(0, 1, 2), Tweak: new(big.Int).Set(secp.Q)}},
		{"share does not match public share", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.Xi.Add(k.Xi, big.NewInt(1)) })}},
		{"short committee vector", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.H1j = k.H1j[:2] })}},
		{"nil public share", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.BigXj[1] = nil })}},
		{"Paillier factors do not match N", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.PaillierSK.P = big.NewInt(7) })}},
		{"peer h1 = h2", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.H1j[2] = k.H2j[2] })}},
		{"peer Ñ reused", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.NTildej[2] = k.NTildej[1] })}},
		{"small peer Paillier key", Config{SessionID: sid, Signers: ids(0, 1, 2),
			Key: withKey(func(k *keygen.LocalPartySaveData) { k.PaillierPKs[1].N = big.NewInt(35) })}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewPresigner(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestGeneratorH(t *testing.T) {
	h, err := secp.Parse(GeneratorH())
	if err != nil {
		t.Fatalf("h does not decode as a curve point: %v", err)
	}
	if h.Equal(secp.Generator()) || h.Equal(secp.Generator().Neg()) {
		t.Fatal("h is ±g")
	}
	again, _ := secp.HashToPoint([]byte(GeneratorHTag))
	if !again.Equal(h) {
		t.Fatal("h is not the hash of its documented tag")
	}
}

// A run with messages delivered in random order, so that next-round
// messages often arrive before the current round is complete.
func TestHandle_BuffersEarlyMessagesAndReportsWaiting(t *testing.T) {
	ks := keys(t, "2-of-3")
	ps := newPresigners(t, ks, []int{0, 1, 2}, nil)
	if _, err := ps[0].Handle(Message{From: 1, To: Broadcast, Round: 1}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Handle before Start: %v", err)
	}
	type delivery struct {
		to int
		m  Message
	}
	var pending []delivery
	rng := mrand.New(mrand.NewPCG(1, 2))
	enqueue := func(msgs []Message) {
		for _, m := range msgs {
			for j := range ps {
				if j != m.From {
					pending = append(pending, delivery{j, m})
				}
			}
		}
	}
	var first1 Message
	for i, p := range ps {
		out, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			first1 = out[0]
		}
		enqueue(out)
	}
	if _, err := ps[0].Start(); !errors.Is(err, ErrFinished) {
		t.Fatalf("second Start: %v", err)
	}
	if w := ps[0].Waiting(); len(w) != 2 || w[0] != 1 || w[1] != 2 {
		t.Fatalf("Waiting = %v, want [1 2]", w)
	}
	early := 0
	for len(pending) > 0 {
		k := rng.IntN(len(pending))
		d := pending[k]
		pending = append(pending[:k], pending[k+1:]...)
		if d.m.Round > ps[d.to].round && ps[d.to].state == stateRunning {
			early++
		}
		out, err := ps[d.to].Handle(d.m)
		if err != nil {
			t.Fatalf("signer %d, round %d message from %d: %v", d.to, d.m.Round, d.m.From, err)
		}
		enqueue(out)
	}
	if early == 0 {
		t.Fatal("the random order never delivered a message early; the test did not test buffering")
	}
	for i, p := range ps {
		if !p.Done() || p.Waiting() != nil {
			t.Fatalf("signer %d not done", i)
		}
		if p.st.w.Sign() != 0 || p.sec.k.Sign() != 0 || p.sec.sigma.Sign() != 0 || p.st.rp[i].NT.HasCRT() {
			t.Fatalf("signer %d: a completed run kept its secrets", i)
		}
	}
	// Messages after the end are refused without harm.
	if _, err := ps[0].Handle(first1); !errors.Is(err, ErrFinished) {
		t.Fatalf("Handle after Done: %v", err)
	}
	a, err := ps[0].Presignature()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Presignature(); !errors.Is(err, ErrFinished) {
		t.Fatalf("second Presignature: %v", err)
	}
	b, _ := ps[2].Presignature()
	if a.ID() != b.ID() {
		t.Fatal("presignature IDs differ")
	}
}

func TestHandle_RejectsWithoutEndingTheRun(t *testing.T) {
	ks := keys(t, "2-of-3")
	ps := newPresigners(t, ks, []int{0, 1, 2}, nil)
	out1, err := ps[1].Start()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Presignature(); !errors.Is(err, ErrNotDone) {
		t.Fatalf("Presignature before Start: %v", err)
	}
	if _, err := ps[0].Start(); err != nil {
		t.Fatal(err)
	}
	m := out1[0]
	cases := []struct {
		name string
		m    Message
		want error
	}{
		{"sender out of range", Message{From: 3, To: Broadcast, Round: 1, Payload: m.Payload}, ErrUnknownSender},
		{"sender is self", Message{From: 0, To: Broadcast, Round: 1, Payload: m.Payload}, ErrUnknownSender},
		{"not a broadcast", Message{From: 1, To: 0, Round: 1, Payload: m.Payload}, ErrUnknownSender},
		{"round zero", Message{From: 1, To: Broadcast, Round: 0, Payload: m.Payload}, ErrWrongRound},
		{"online round", Message{From: 1, To: Broadcast, Round: RoundOnline, Payload: m.Payload}, ErrWrongRound},
		{"no such round", Message{From: 1, To: Broadcast, Round: RoundRevealS + 1, Payload: m.Payload}, ErrWrongRound},
		{"negative round", Message{From: 1, To: Broadcast, Round: -1, Payload: m.Payload}, ErrWrongRound},
	}
	for _, tc := range cases {
		if _, err := ps[0].Handle(tc.m); !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := ps[0].Handle(m); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Handle(m); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if w := ps[0].Waiting(); len(w) != 1 || w[0] != 2 {
		t.Fatalf("Waiting = %v, want [2]", w)
	}
	// A malformed payload ends the run and names the sender.
	bad := Message{From: 2, To: Broadcast, Round: 1, Payload: []byte{payloadVersion, 1, 2, 3}}
	_, err = ps[0].Handle(bad)
	assertCulprit(t, 0, err, ErrMalformed, 2)
	if _, err := ps[0].Handle(m); !errors.Is(err, ErrFinished) {
		t.Fatalf("Handle after a fatal error: %v", err)
	}
	// A message of any round the run may still enter is buffered, however
	// far ahead: here a type-5 reveal while in round 1.
	if _, err := ps[2].Start(); err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	e := revealGammaEntry{one, one, one, one}
	reveal := Message{From: 1, To: Broadcast, Round: RoundRevealRbar,
		Payload: (&msgRevealRbar{k: one, rho: one, gamma: one, entries: []revealGammaEntry{e, e}}).encode()}
	if _, err := ps[2].Handle(reveal); err != nil {
		t.Fatalf("message of a later round: %v", err)
	}
	if w := ps[2].Waiting(); len(w) != 2 {
		t.Fatalf("Waiting = %v after a later round's message, want [0 1]", w)
	}
	printed := fmt.Sprintf("%v %+v %#v %v", ps[1], ps[1], ps[1], *ps[1])
	for _, secret := range []*big.Int{ps[1].sec.k, ps[1].sec.gamma, ps[1].st.w} {
		if strings.Contains(printed, secret.String()) || strings.Contains(printed, secret.Text(16)) {
			t.Fatal("formatting a Presigner prints a secret")
		}
	}
	ps[0].Wipe()
	if ps[0].sec.k.Sign() != 0 || ps[0].st.w.Sign() != 0 {
		t.Fatal("Wipe left secrets")
	}
}

var (
	presigOnce sync.Once
	presigBlob [][]byte
	presigErr  error
)

// cachedPresignatures returns fresh copies of the presignatures of one
// 2-signer run made once per test binary.
func cachedPresignatures(t *testing.T) []*Presignature {
	t.Helper()
	presigOnce.Do(func() {
		ks := keys(t, "2-of-3")
		for _, ps := range presign(t, ks, []int{0, 2}, big.NewInt(42)) {
			b, err := ps.MarshalBinary()
			if err != nil {
				presigErr = err
				return
			}
			presigBlob = append(presigBlob, b)
		}
	})
	if presigErr != nil {
		t.Fatal(presigErr)
	}
	out := make([]*Presignature, len(presigBlob))
	for i, b := range presigBlob {
		out[i] = new(Presignature)
		if err := out[i].UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestPresignature_EncodingRoundTripAndChecks(t *testing.T) {
	pss := cachedPresignatures(t)
	blob, err := pss[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Presignature
	if err := back.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(blob, again) || back.ID() != pss[0].ID() {
		t.Fatal("round trip changed the presignature")
	}
	// The encoding of another party's presignature is a different blob with
	// the same ID.
	other, _ := pss[1].MarshalBinary()
	if bytes.Equal(blob, other) || pss[1].ID() != pss[0].ID() {
		t.Fatal("both parties' presignatures encode alike or have different IDs")
	}
	n := 2
	kOff := presigLen(n) - 64
	mutations := map[string]func(b []byte) []byte{
		"empty":             func(b []byte) []byte { return nil },
		"bad magic":         func(b []byte) []byte { b[0] = 'X'; return b },
		"future version":    func(b []byte) []byte { b[4] = 2; return b },
		"truncated":         func(b []byte) []byte { return b[:len(b)-1] },
		"trailing byte":     func(b []byte) []byte { return append(b, 0) },
		"self out of range": func(b []byte) []byte { b[38] = 2; return b },
		"k flipped":         func(b []byte) []byte { b[kOff+31] ^= 1; return b },
		"sigma flipped":     func(b []byte) []byte { b[kOff+63] ^= 1; return b },
		"signers swapped": func(b []byte) []byte {
			s := bytes.Clone(b[39:71])
			copy(b[39:71], b[71:103])
			copy(b[71:103], s)
			return b
		},
		"R changed": func(b []byte) []byte {
			off := 39 + 32*n + 32 + 33
			copy(b[off:off+33], secp.Generator().Bytes())
			return b
		},
	}
	for name, f := range mutations {
		var ps Presignature
		if err := ps.UnmarshalBinary(f(bytes.Clone(blob))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestPresignature_SignsOnce(t *testing.T) {
	pss := cachedPresignatures(t)
	digest := digestOf("once")
	if _, err := pss[0].SignShare(make([]byte, 32)); !errors.Is(err, ErrDigest) {
		t.Fatalf("zero digest: %v", err)
	}
	if _, err := pss[0].SignShare(secp.Q.Bytes()); !errors.Is(err, ErrDigest) {
		t.Fatalf("digest equal to q: %v", err)
	}
	s0, err := pss[0].SignShare(digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pss[0].SignShare(digestOf("twice")); !errors.Is(err, ErrUsed) {
		t.Fatalf("second SignShare: %v", err)
	}
	if _, err := pss[0].MarshalBinary(); !errors.Is(err, ErrUsed) {
		t.Fatalf("MarshalBinary after use: %v", err)
	}
	s1, _ := pss[1].SignShare(digest)
	// A used presignature still verifies and combines the others' shares.
	if err := pss[0].VerifyShare(1, digest, s1); err != nil {
		t.Fatal(err)
	}
	r, s, rec, err := pss[0].Combine(digest, []*big.Int{s0, s1})
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, pss[0].PublicKey(), digest, r, s, rec)
	if r.Cmp(pss[0].SmallR()) != 0 {
		t.Fatal("r differs from the presignature's r")
	}
	// A long digest is truncated as ECDSA does.
	long := append(bytes.Clone(digest), 1, 2, 3)
	p2 := cachedPresignatures(t)
	_, _, _, err = p2[0].Combine(long, signAll(t, p2, long))
	if err != nil {
		t.Fatalf("64-byte digest: %v", err)
	}
	fresh := cachedPresignatures(t)[0]
	for _, s := range []string{fresh.String(), fmt.Sprintf("%v %+v %#v %s %v %+v", fresh, fresh, fresh, fresh, *fresh, *fresh)} {
		if strings.Contains(s, fresh.k.String()) || strings.Contains(s, fresh.k.Text(16)) || strings.Contains(s, fresh.sigma.String()) {
			t.Fatal("formatting a presignature prints a secret share")
		}
	}
}

func FuzzPresignatureUnmarshal(f *testing.F) {
	f.Add([]byte("KQPS\x01"))
	if blob, err := seedPresignature(); err == nil {
		f.Add(blob)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ps Presignature
		if err := ps.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, err := ps.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatal("accepted a blob that does not re-encode identically")
		}
	})
}

// seedPresignature is a valid presignature encoding built without a run:
// two signers with k = (3, 5), σ = (7, 11), R = g^{1/8}.
func seedPresignature() ([]byte, error) {
	q := secp.Q
	k := []*big.Int{big.NewInt(3), big.NewInt(5)}
	sigma := []*big.Int{big.NewInt(7), big.NewInt(11)}
	R := secp.BaseMult(new(big.Int).ModInverse(big.NewInt(8), q))
	ps := &Presignature{
		signers: []*big.Int{big.NewInt(1), big.NewInt(2)}, tweak: new(big.Int),
		bigR: R, rbar: []*secp.Point{R.Mul(k[0]), R.Mul(k[1])}, s: []*secp.Point{R.Mul(sigma[0]), R.Mul(sigma[1])},
		pub: R.Mul(big.NewInt(18)), k: k[0], sigma: sigma[0],
	}
	return ps.MarshalBinary()
}

func FuzzDecodePayload(f *testing.F) {
	for r := 1; r <= RoundRevealS; r++ {
		f.Add(uint8(r), []byte{payloadVersion})
		f.Add(uint8(r), []byte{payloadComplaint, uint8(complaintAbout(r)), 1, 1})
	}
	f.Fuzz(func(t *testing.T, round uint8, payload []byte) {
		if !isRound(int(round)) {
			return
		}
		for _, n := range []int{2, 3} {
			rd, err := arrive(int(round), n, 0, payload)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error without ErrMalformed: %v", err)
				}
				continue
			}
			if !rd.has(0) {
				t.Fatal("no message and no error")
			}
		}
	})
}

// Every real payload of a run, cut at every length or extended, is refused
// as malformed without a panic.
func TestDecodePayload_RejectsEveryTruncation(t *testing.T) {
	ks := keys(t, "2-of-3")
	nw := newNetwork(newPresigners(t, ks, []int{0, 1}, nil))
	var msgs []Message
	nw.tamper = func(m *Message) {
		if m.From == 0 {
			msgs = append(msgs, *m)
		}
	}
	for i, err := range nw.run(t) {
		if err != nil {
			t.Fatalf("signer %d: %v", i, err)
		}
	}
	// Synthetic blame reveals for two signers.
	one := big.NewInt(1)
	revR := (&msgRevealRbar{k: one, rho: one, gamma: one, entries: []revealGammaEntry{{one, one, one, one}}}).encode()
	revS := &msgRevealS{k: one, rho: one, entries: []revealWEntry{{one, one}}}
	revS.pDLEQ = zkdleqSeed()
	msgs = append(msgs, Message{Round: RoundRevealRbar, Payload: revR}, Message{Round: RoundRevealS, Payload: revS.encode()})
	if len(msgs) != 8 {
		t.Fatalf("captured %d messages, want 8", len(msgs))
	}
	for _, m := range msgs {
		if _, err := arrive(m.Round, 2, 0, m.Payload); err != nil {
			t.Fatalf("round %d: valid payload refused: %v", m.Round, err)
		}
		for cut := 0; cut < len(m.Payload); cut++ {
			if _, err := arrive(m.Round, 2, 0, m.Payload[:cut]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("round %d cut at %d: %v", m.Round, cut, err)
			}
		}
		if _, err := arrive(m.Round, 2, 0, append(bytes.Clone(m.Payload), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("round %d with a trailing byte accepted", m.Round)
		}
		if _, err := arrive(m.Round, 3, 0, m.Payload); !errors.Is(err, ErrMalformed) && m.Round != 3 && m.Round != 4 && m.Round != 6 {
			t.Fatalf("round %d payload accepted for the wrong number of signers", m.Round)
		}
		bad := bytes.Clone(m.Payload)
		bad[0] = 0xff
		if _, err := arrive(m.Round, 2, 0, bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("round %d with a future version accepted", m.Round)
		}
	}
}

func zkdleqSeed() *zkdleq.Proof {
	g := secp.Generator()
	return &zkdleq.Proof{A1: g, A2: g, Z: big.NewInt(1)}
}

func TestPresignature_UnmarshalStored(t *testing.T) {
	pss := cachedPresignatures(t)
	blob, err := pss[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Presignature
	if err := back.UnmarshalStored(blob); err != nil {
		t.Fatal(err)
	}
	if back.ID() != pss[0].ID() {
		t.Fatal("stored round trip changed the ID")
	}
	// Format and the public products are still checked ...
	n := 2
	for name, f := range map[string]func(b []byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)-1] },
		"Rbar changed": func(b []byte) []byte {
			off := 39 + 32*n + 32 + 33 + 33 // after the tweak, public key and R
			copy(b[off:off+33], secp.Generator().Bytes())
			return b
		},
	} {
		var ps Presignature
		if err := ps.UnmarshalStored(f(bytes.Clone(blob))); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// ... but a flipped k is only caught where it matters: its share fails.
	kOff := presigLen(n) - 64
	bad := bytes.Clone(blob)
	bad[kOff+31] ^= 1
	var ps Presignature
	if err := ps.UnmarshalStored(bad); err != nil {
		t.Fatalf("UnmarshalStored made the skipped check: %v", err)
	}
	digest := digestOf("stored")
	s0, err := ps.SignShare(digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := pss[1].VerifyShare(0, digest, s0); !errors.Is(err, ErrBadShare) {
		t.Fatalf("share from a corrupted k: got %v, want ErrBadShare", err)
	}
}

func TestStored_SignsAndCombinesLikePresignature(t *testing.T) {
	pss := cachedPresignatures(t)
	digest := digestOf("stored fast path")
	var stored []Stored
	for _, ps := range pss {
		b, err := ps.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, Stored(b))
	}
	pub, err := stored[0].PublicKey()
	if err != nil || !bytes.Equal(pub, pss[0].PublicKey()) {
		t.Fatalf("public key %x, %v", pub, err)
	}
	shares := make([]*big.Int, len(stored))
	for i, st := range stored {
		if shares[i], err = st.SignShare(digest); err != nil {
			t.Fatal(err)
		}
	}
	r, s, recID, err := stored[0].Combine(digest, shares)
	if err != nil {
		t.Fatal(err)
	}
	checkSignature(t, pss[0].PublicKey(), digest, r, s, recID)
	// The same shares through the decoded presignature give the same result.
	r2, s2, rec2, err := pss[0].Combine(digest, shares)
	if err != nil || r2.Cmp(r) != 0 || s2.Cmp(s) != 0 || rec2 != recID {
		t.Fatalf("decoded Combine differs: %v", err)
	}
	// A bad share is blamed on its signer through the slow path.
	bad := append([]*big.Int(nil), shares...)
	bad[1] = new(big.Int).Add(bad[1], big.NewInt(1))
	_, _, _, err = stored[0].Combine(digest, bad)
	assertCulprit(t, 0, err, ErrBadShare, 1)
	// Malformed encodings are refused.
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": stored[0][:len(stored[0])-1],
	} {
		if _, err := Stored(b).SignShare(digest); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestVerifier_CombineWithMatchesCombine(t *testing.T) {
	pss := cachedPresignatures(t)
	v, err := NewVerifier(pss[0].PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	digest := digestOf("verifier")
	var stored []Stored
	for _, ps := range pss {
		b, err := ps.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, Stored(b))
	}
	shares := make([]*big.Int, len(stored))
	for i, st := range stored {
		if shares[i], err = st.SignShare(digest); err != nil {
			t.Fatal(err)
		}
	}
	r, s, rec, err := stored[0].CombineWith(v, digest, shares)
	if err != nil {
		t.Fatal(err)
	}
	r2, s2, rec2, err := stored[0].Combine(digest, shares)
	if err != nil || r.Cmp(r2) != 0 || s.Cmp(s2) != 0 || rec != rec2 {
		t.Fatalf("CombineWith and Combine disagree: %v", err)
	}
	if !v.Verify(digest, r, s) || v.Verify(digestOf("other"), r, s) {
		t.Fatal("Verifier judges wrongly")
	}
	bad := append([]*big.Int(nil), shares...)
	bad[0] = new(big.Int).Add(bad[0], big.NewInt(1))
	_, _, _, err = stored[0].CombineWith(v, digest, bad)
	assertCulprit(t, 0, err, ErrBadShare, 0)
	other, err := NewVerifier(secp.Generator().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := stored[0].CombineWith(other, digest, shares); !errors.Is(err, ErrMalformed) {
		t.Fatalf("verifier for another key: got %v", err)
	}
}
