package gg20

import (
	"fmt"
	"math/big"

	"github.com/bnb-chain/tss-lib/v2/crypto/mta"

	"github.com/keyquorum/keyquorum/tss/gg20/internal/secp"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/wire"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdleq"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkdlog"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkmta"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpdl"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkpedersen"
	"github.com/keyquorum/keyquorum/tss/gg20/internal/zkst"
)

// Broadcast is the [Message.To] value of a message for every other signer.
// Every presigning message is a broadcast: the session layer must deliver
// each one to all other signers and make sure they all received the same
// bytes (echo broadcast), which the blame rounds rely on.
const Broadcast = -1

// Round numbers used in [Message.Round] and [CulpritError.Round]. Presigning
// rounds are 1 to 6 (GG20 §3, Phases 1–6).
const (
	// RoundOnline is the online round (sᵢ); it appears only in
	// [CulpritError] values from [Presignature.Combine].
	RoundOnline = 7
	// RoundRevealRbar is the blame reveal after ∏R̄ⱼ ≠ g (GG20 §4.3, type 5).
	RoundRevealRbar = 8
	// RoundRevealS is the blame reveal after ∏Sⱼ ≠ y' (GG20 §4.3, type 7).
	RoundRevealS = 9
)

// The first byte of every message payload says what it holds.
const (
	// payloadVersion starts a round message (format version 1).
	payloadVersion = 1
	// payloadComplaint starts a complaint (format version 1), which a signer
	// sends in place of its message of the round after one whose proofs
	// were addressed to it.
	payloadComplaint = 2
)

// Message is one protocol message between signers.
type Message struct {
	// From is the sender's signer index (position in [Config.Signers]). On
	// receipt it must be the sender as authenticated by the network.
	From int
	// To is the recipient's signer index, or [Broadcast].
	To int
	// Round is the protocol round the message belongs to.
	Round int
	// Payload is the encoded round message.
	Payload []byte
}

// peers returns the signer indices other than from, ascending: the order of
// per-recipient entries inside a broadcast payload.
func peers(n, from int) []int {
	out := make([]int, 0, n-1)
	for j := 0; j < n; j++ {
		if j != from {
			out = append(out, j)
		}
	}
	return out
}

// slot returns the position of entry "for j" in a payload sent by from.
func slot(from, j int) int {
	if j < from {
		return j
	}
	return j - 1
}

// roundMessage is the message of one presigning round, as its sender
// broadcasts it. Each message type names its round and encodes and decodes
// itself; decodeMessage reads a payload into the type of the round it was
// sent in, so a round only ever holds messages of its own type.
type roundMessage interface {
	// round is the round the message belongs to.
	round() int
	// encode returns the payload: payloadVersion, then the fields.
	encode() []byte
	// decode reads the fields that follow the first byte of a payload from
	// a run of n signers. It checks the structure only; errors are left in
	// r.
	decode(r *wire.Reader, n int)
}

// msgPtr is a pointer to the round message type M, for generic code that
// makes and fills a new M.
type msgPtr[M any] interface {
	*M
	roundMessage
}

// msg1 is the round-1 broadcast: Cᵢ, cᵢ = Enc_i(kᵢ), and per verifier a
// range proof.
type msg1 struct {
	commit [32]byte
	c      *big.Int
	rng    []*mta.RangeProofAlice // for each verifier j ≠ sender
}

func (*msg1) round() int { return 1 }

func (m *msg1) encode() []byte {
	w := newWriter()
	w.Fixed(m.commit[:])
	w.Int(m.c)
	for _, pf := range m.rng {
		zkmta.EncodeRange(w, pf)
	}
	return w.Bytes()
}

func (m *msg1) decode(r *wire.Reader, n int) {
	copy(m.commit[:], r.Fixed(32, "commitment"))
	m.c = r.Int(wire.MaxIntLen, "c")
	for i := 0; i < n-1; i++ {
		m.rng = append(m.rng, zkmta.DecodeRange(r))
	}
}

// msg2 is the round-2 broadcast: for each Alice j ≠ sender, the MtA and
// MtAwc responses.
type msg2 struct {
	entries []mtaEntry
}

type mtaEntry struct {
	cGamma *big.Int // c_j^{γ_i}·Enc_j(β'_ij)
	pGamma *mta.ProofBob
	cW     *big.Int // c_j^{w_i}·Enc_j(ν'_ij)
	pW     *mta.ProofBobWC
}

func (*msg2) round() int { return 2 }

func (m *msg2) encode() []byte {
	w := newWriter()
	for _, e := range m.entries {
		w.Int(e.cGamma)
		zkmta.EncodeBob(w, e.pGamma)
		w.Int(e.cW)
		zkmta.EncodeBobWC(w, e.pW)
	}
	return w.Bytes()
}

func (m *msg2) decode(r *wire.Reader, n int) {
	for i := 0; i < n-1; i++ {
		var e mtaEntry
		e.cGamma = r.Int(wire.MaxIntLen, "MtA ciphertext")
		e.pGamma = zkmta.DecodeBob(r)
		e.cW = r.Int(wire.MaxIntLen, "MtAwc ciphertext")
		e.pW = zkmta.DecodeBobWC(r)
		m.entries = append(m.entries, e)
	}
}

// msg3 is the round-3 broadcast: δᵢ, Tᵢ and the proof of knowledge of its
// opening.
type msg3 struct {
	delta *big.Int
	T     *secp.Point
	pT    *zkpedersen.Proof
}

func (*msg3) round() int { return 3 }

func (m *msg3) encode() []byte {
	w := newWriter()
	w.Scalar(m.delta)
	w.Point(m.T)
	m.pT.Encode(w)
	return w.Bytes()
}

func (m *msg3) decode(r *wire.Reader, _ int) {
	m.delta, m.T, m.pT = r.Scalar("delta"), r.Point("T"), zkpedersen.Decode(r)
}

// msg4 is the round-4 broadcast: Γᵢ with the decommitment randomness and a
// proof of γᵢ.
type msg4 struct {
	Gamma  *secp.Point
	open   [32]byte
	pGamma *zkdlog.Proof
}

func (*msg4) round() int { return 4 }

func (m *msg4) encode() []byte {
	w := newWriter()
	w.Point(m.Gamma)
	w.Fixed(m.open[:])
	m.pGamma.Encode(w)
	return w.Bytes()
}

func (m *msg4) decode(r *wire.Reader, _ int) {
	m.Gamma = r.Point("Gamma")
	copy(m.open[:], r.Fixed(32, "decommitment"))
	m.pGamma = zkdlog.Decode(r)
}

// msg5 is the round-5 broadcast: R̄ᵢ and per verifier a PDL proof.
type msg5 struct {
	Rbar *secp.Point
	pdl  []*zkpdl.Proof
}

func (*msg5) round() int { return 5 }

func (m *msg5) encode() []byte {
	w := newWriter()
	w.Point(m.Rbar)
	for _, pf := range m.pdl {
		pf.Encode(w)
	}
	return w.Bytes()
}

func (m *msg5) decode(r *wire.Reader, n int) {
	m.Rbar = r.Point("Rbar")
	for i := 0; i < n-1; i++ {
		m.pdl = append(m.pdl, zkpdl.Decode(r))
	}
}

// msg6 is the round-6 broadcast: Sᵢ and the proof tying it to Tᵢ.
type msg6 struct {
	S   *secp.Point
	pST *zkst.Proof
}

func (*msg6) round() int { return 6 }

func (m *msg6) encode() []byte {
	w := newWriter()
	w.Point(m.S)
	m.pST.Encode(w)
	return w.Bytes()
}

func (m *msg6) decode(r *wire.Reader, _ int) {
	m.S, m.pST = r.Point("S"), zkst.Decode(r)
}

// msgRevealRbar is the blame reveal after ∏R̄ⱼ ≠ g.
type msgRevealRbar struct {
	k, rho, gamma *big.Int
	entries       []revealGammaEntry // for each j ≠ sender
}

type revealGammaEntry struct {
	betaPrm, betaNonce   *big.Int // sender as Bob towards Alice j
	alphaPlain, alphaRnd *big.Int // sender as Alice: opening of Bob j's ciphertext
}

func (*msgRevealRbar) round() int { return RoundRevealRbar }

func (m *msgRevealRbar) encode() []byte {
	w := newWriter()
	w.Int(m.k)
	w.Int(m.rho)
	w.Scalar(m.gamma)
	for _, e := range m.entries {
		w.Int(e.betaPrm)
		w.Int(e.betaNonce)
		w.Int(e.alphaPlain)
		w.Int(e.alphaRnd)
	}
	return w.Bytes()
}

func (m *msgRevealRbar) decode(r *wire.Reader, n int) {
	m.k, m.rho, m.gamma = r.Int(wire.MaxIntLen, "k"), r.Int(wire.MaxIntLen, "rho"), r.Scalar("gamma")
	for i := 0; i < n-1; i++ {
		m.entries = append(m.entries, revealGammaEntry{
			betaPrm: r.Int(wire.MaxIntLen, "beta'"), betaNonce: r.Int(wire.MaxIntLen, "beta nonce"),
			alphaPlain: r.Int(wire.MaxIntLen, "alpha plaintext"), alphaRnd: r.Int(wire.MaxIntLen, "alpha nonce"),
		})
	}
}

// msgRevealS is the blame reveal after ∏Sⱼ ≠ y'.
type msgRevealS struct {
	k, rho  *big.Int
	entries []revealWEntry // for each j ≠ sender
	pDLEQ   *zkdleq.Proof
}

type revealWEntry struct {
	muPlain, muRnd *big.Int // sender as Alice: opening of Bob j's MtAwc ciphertext
}

func (*msgRevealS) round() int { return RoundRevealS }

func (m *msgRevealS) encode() []byte {
	w := newWriter()
	w.Int(m.k)
	w.Int(m.rho)
	for _, e := range m.entries {
		w.Int(e.muPlain)
		w.Int(e.muRnd)
	}
	m.pDLEQ.Encode(w)
	return w.Bytes()
}

func (m *msgRevealS) decode(r *wire.Reader, n int) {
	m.k, m.rho = r.Int(wire.MaxIntLen, "k"), r.Int(wire.MaxIntLen, "rho")
	for i := 0; i < n-1; i++ {
		m.entries = append(m.entries, revealWEntry{
			muPlain: r.Int(wire.MaxIntLen, "mu plaintext"), muRnd: r.Int(wire.MaxIntLen, "mu nonce"),
		})
	}
	m.pDLEQ = zkdleq.Decode(r)
}

func newWriter() *wire.Writer {
	w := &wire.Writer{}
	w.Uint8(payloadVersion)
	return w
}

// A complaint: the sender accuses the provers whose round-`about` proofs
// addressed to it (range proofs in round 1, Bob's proofs in round 2, PDL
// proofs in round 5) failed its check. It takes the place of the sender's
// message of the next round: round 2, 3, or after round 5 round 6 or the
// type-5 reveal, whichever the run enters. Encoding:
//
//	payloadComplaint | about (1) | count (1) | count × prover index (1)
//
// with 1 ≤ count < n and the provers ascending; a signer never accuses
// itself.
type msgComplaint struct {
	about   int
	provers []int
}

// complaintAbout returns the round whose proofs a complaint sent in round
// slot may dispute, or 0 if no complaint may be sent in that round.
func complaintAbout(slot int) int {
	switch slot {
	case 2:
		return 1
	case 3:
		return 2
	case 6, RoundRevealRbar:
		return 5
	}
	return 0
}

func (m *msgComplaint) encode() []byte {
	w := &wire.Writer{}
	w.Uint8(payloadComplaint)
	w.Uint8(uint8(m.about))
	w.Uint8(uint8(len(m.provers)))
	for _, j := range m.provers {
		w.Uint8(uint8(j))
	}
	return w.Bytes()
}

// decodeComplaint parses a complaint sent by signer from in round slot of a
// run with n signers (the payload after its first byte).
func decodeComplaint(r *wire.Reader, slot, n, from int) (*msgComplaint, error) {
	m := &msgComplaint{about: int(r.Uint8("complaint round"))}
	count := int(r.Uint8("complaint count"))
	for i := 0; i < count && r.Err() == nil; i++ {
		m.provers = append(m.provers, int(r.Uint8("accused signer")))
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: round %d complaint: %v", ErrMalformed, slot, err)
	}
	if want := complaintAbout(slot); want == 0 || m.about != want {
		return nil, fmt.Errorf("%w: a complaint about round %d cannot be sent in round %d", ErrMalformed, m.about, slot)
	}
	if count == 0 || count >= n {
		return nil, fmt.Errorf("%w: complaint accuses %d of %d signers", ErrMalformed, count, n)
	}
	for i, j := range m.provers {
		if j >= n || j == from || (i > 0 && j <= m.provers[i-1]) {
			return nil, fmt.Errorf("%w: complaint must accuse other signers, in ascending order", ErrMalformed)
		}
	}
	return m, nil
}

// decodeMessage parses the payload of a message that signer from sent, in
// a run of n signers, in the round of message type M: either an M or a
// complaint in its place (exactly one of the two is returned, or an error
// wrapping ErrMalformed). It checks the structure only (lengths,
// encodings, points on the curve, scalars below q, a complaint's round and
// accused signers); the round's verify step checks the rest and names the
// sentinel.
func decodeMessage[M any, PM msgPtr[M]](payload []byte, n, from int) (PM, *msgComplaint, error) {
	m := PM(new(M))
	round := m.round()
	r := wire.NewReader(payload)
	switch v := r.Uint8("version"); {
	case r.Err() != nil:
		return nil, nil, fmt.Errorf("%w: round %d: %v", ErrMalformed, round, r.Err())
	case v == payloadComplaint:
		c, err := decodeComplaint(r, round, n, from)
		return nil, c, err
	case v != payloadVersion:
		return nil, nil, fmt.Errorf("%w: payload version %d, want %d", ErrMalformed, v, payloadVersion)
	}
	m.decode(r, n)
	if err := r.Done(); err != nil {
		return nil, nil, fmt.Errorf("%w: round %d: %v", ErrMalformed, round, err)
	}
	return m, nil, nil
}
