package frost

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// Distributed key generation: the Pedersen DKG with proofs of knowledge of
// Komlo and Goldberg, "FROST: Flexible Round-Optimized Schnorr Threshold
// Signatures" (2020), §5.1 (Figure 1). Each participant P_i:
//
//	Round 1: draw f_i of degree t−1 with coefficients a_i0..a_i(t−1); prove
//	         knowledge of a_i0 with a Schnorr proof σ_i = (R_i, μ_i),
//	         R_i = k·G, c_i = H(i, Φ, φ_i0, R_i), μ_i = k + a_i0·c_i;
//	         broadcast C_i = ⟨φ_i0..φ_i(t−1)⟩, φ_ij = a_ij·G, and σ_i.
//	Round 2: check every σ_j: R_j = μ_j·G − c_j·φ_j0; send f_i(j) to each
//	         P_j privately.
//	Finalize: check every f_j(i)·G = Σ_k φ_jk·i^k; s_i = Σ_j f_j(i); the
//	         group key is Σ_j φ_j0 and P_j's public share is Σ_l f_l(j)·G,
//	         computed from the summed commitments.
//
// The functions are pure: the caller carries the messages. Round-1 messages
// must reach everyone identically (a broadcast channel with echo), round-2
// messages confidentially and authenticated.

// DKGConfig configures one participant's run of [NewDKG].
type DKGConfig struct {
	// Suite is the ciphersuite of the key.
	Suite *Ciphersuite
	// Self is this participant's identifier.
	Self Identifier
	// Participants lists every participant's identifier, Self included.
	Participants []Identifier
	// Threshold is the number of signers the key will need (at least 1,
	// at most len(Participants)).
	Threshold int
	// Context binds the proofs of knowledge to this run (Φ in the paper):
	// every participant must use the same value, unique to the run, for
	// example a session ID. It may be empty, but then a proof from one run
	// can be replayed in another.
	Context []byte
	// Rand is the source of randomness; nil means crypto/rand.Reader.
	Rand io.Reader
}

// A DKG is one participant's state in a run of distributed key generation.
// It holds the participant's secret polynomial and never prints it. Call
// [DKG.Wipe] if the run is abandoned; [DKG.Finalize] wipes it itself.
type DKG struct {
	cfg      DKGConfig
	ids      []Identifier // sorted
	coeffs   []scalar     // secret; nil after Round2
	ownShare scalar       // f_i(i); nil after Finalize
	own      *VSSCommitment
	round1   map[Identifier]*DKGRound1
	step     int // 1: Round2 next; 2: Finalize next; 3: over
}

// A DKGRound1 is a participant's broadcast of round one: the commitment to
// its polynomial and its proof of knowledge of the constant term. It is
// public.
type DKGRound1 struct {
	suite      *Ciphersuite
	from       Identifier
	commitment *VSSCommitment
	proofR     element
	proofZ     scalar
}

// From returns the sender.
func (m *DKGRound1) From() Identifier { return m.from }

// A DKGRound2 is the secret share f_i(j) that participant i sends to
// participant j in round two, over a confidential channel. It never prints
// the share; call [DKGRound2.Wipe] once it is sent or consumed.
type DKGRound2 struct {
	suite *Ciphersuite
	from  Identifier
	to    Identifier
	share scalar
}

// From returns the sender.
func (m *DKGRound2) From() Identifier { return m.from }

// To returns the recipient.
func (m *DKGRound2) To() Identifier { return m.to }

// NewDKG checks cfg, draws the participant's polynomial and returns its
// state and its round-one broadcast.
func NewDKG(cfg DKGConfig) (*DKG, *DKGRound1, error) {
	s := cfg.Suite
	if !s.valid() {
		return nil, nil, errf(ErrInvalidParameters, "unknown ciphersuite")
	}
	ids := slices.Clone(cfg.Participants)
	slices.Sort(ids)
	if len(ids) == 0 || len(ids) > maxParticipants || ids[0] == 0 || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return nil, nil, errf(ErrInvalidParameters, "participants must be distinct, non-zero and at most %d", maxParticipants)
	}
	if _, ok := slices.BinarySearch(ids, cfg.Self); !ok {
		return nil, nil, errf(ErrInvalidIdentifier, "self %d is not a participant", cfg.Self)
	}
	if cfg.Threshold < 1 || cfg.Threshold > len(ids) {
		return nil, nil, errf(ErrInvalidParameters, "threshold %d of %d participants", cfg.Threshold, len(ids))
	}
	cfg.Rand = orCryptoRand(cfg.Rand)
	cfg.Context = slices.Clone(cfg.Context)
	coeffs, err := randomPolynomial(s, nil, cfg.Threshold, cfg.Rand)
	if err != nil {
		return nil, nil, err
	}
	k, err := randomScalar(s, cfg.Rand)
	if err != nil {
		wipeAll(coeffs)
		return nil, nil, err
	}
	defer k.wipe()
	msg := &DKGRound1{suite: s, from: cfg.Self, commitment: vssCommit(s, coeffs)}
	msg.proofR = s.g.newElement().scalarBaseMult(k)
	c := dkgChallenge(s, cfg.Self, cfg.Context, msg.commitment.coeffs[0], msg.proofR)
	msg.proofZ = s.g.newScalar().mul(coeffs[0], c)
	msg.proofZ.add(msg.proofZ, k)
	d := &DKG{cfg: cfg, ids: ids, coeffs: coeffs, own: msg.commitment, step: 1}
	return d, msg, nil
}

// dkgChallenge is c_i = H(i, Φ, φ_i0, R_i), the suite's hash to a scalar with
// tag "dkg" over SerializeScalar(i) || SerializeElement(φ_i0) ||
// SerializeElement(R_i) || Φ (Φ last, so the fixed-length fields need no
// framing).
func dkgChallenge(s *Ciphersuite, id Identifier, context []byte, phi0, r element) scalar {
	return s.hashToScalar("dkg", identifierScalar(s.g, id).bytes(), phi0.bytes(), r.bytes(), context)
}

// Round2 takes every other participant's round-one broadcast (its own may be
// included and is ignored), checks each proof of knowledge and returns the
// secret shares to send, one per other participant. A proof that fails or a
// commitment of the wrong size is reported as a *[CulpritError] wrapping
// [ErrProofOfKnowledge], a missing or duplicate broadcast as one wrapping
// [ErrMissingMessage]; either ends the run.
func (d *DKG) Round2(msgs []*DKGRound1) ([]*DKGRound2, error) {
	if d.step != 1 || d.coeffs == nil {
		return nil, errf(ErrWiped, "Round2 called out of order or after Wipe")
	}
	s := d.cfg.Suite
	got := make(map[Identifier]*DKGRound1, len(d.ids))
	var dup, bad []Identifier
	for _, m := range msgs {
		if m == nil || m.suite != s {
			return nil, errf(ErrSuiteMismatch, "round-one message of another suite")
		}
		if m.from == d.cfg.Self {
			continue
		}
		if _, ok := slices.BinarySearch(d.ids, m.from); !ok {
			return nil, errf(ErrInvalidIdentifier, "round-one message from non-participant %d", m.from)
		}
		if _, seen := got[m.from]; seen {
			dup = append(dup, m.from)
			continue
		}
		got[m.from] = m
	}
	missing := dup
	for _, id := range d.ids {
		if _, ok := got[id]; !ok && id != d.cfg.Self {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		d.Wipe()
		return nil, culprits(ErrMissingMessage, missing...)
	}
	for _, id := range d.ids {
		m, ok := got[id]
		if !ok {
			continue
		}
		if m.commitment.Threshold() != d.cfg.Threshold || !verifyPoK(s, m, d.cfg.Context) {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		d.Wipe()
		return nil, culprits(ErrProofOfKnowledge, bad...)
	}
	d.round1 = got
	var out []*DKGRound2
	for _, id := range d.ids {
		f := evalPolynomial(s.g, d.coeffs, identifierScalar(s.g, id))
		if id == d.cfg.Self {
			d.ownShare = f
			continue
		}
		out = append(out, &DKGRound2{suite: s, from: d.cfg.Self, to: id, share: f})
	}
	wipeAll(d.coeffs)
	d.coeffs = nil
	d.step = 2
	return out, nil
}

// verifyPoK checks R_j = μ_j·G − c_j·φ_j0 (FROST paper §5.1, round 1 step 5).
func verifyPoK(s *Ciphersuite, m *DKGRound1, context []byte) bool {
	g := s.g
	phi0 := m.commitment.coeffs[0]
	c := dkgChallenge(s, m.from, context, phi0, m.proofR)
	rhs := g.newElement().scalarMult(g.newScalar().negate(c), phi0)
	rhs.add(rhs, g.newElement().scalarBaseMult(m.proofZ))
	return rhs.equal(m.proofR)
}

// Finalize takes the shares every other participant sent to this one, checks
// each against its sender's round-one commitment, and returns this
// participant's [KeyShare] (whose [PublicKey] every honest participant
// computes identically). A share that does not match is reported as a
// *[CulpritError] wrapping [ErrShareCommitment], a missing, duplicate or
// misaddressed share as one wrapping [ErrMissingMessage]. Finalize wipes the
// run's secrets and the shares in msgs whatever the outcome.
func (d *DKG) Finalize(msgs []*DKGRound2) (*KeyShare, error) {
	if d.step != 2 || d.ownShare == nil {
		return nil, errf(ErrWiped, "Finalize called out of order or after Wipe")
	}
	defer d.Wipe()
	defer func() {
		for _, m := range msgs {
			if m != nil {
				m.Wipe()
			}
		}
	}()
	s := d.cfg.Suite
	g := s.g
	got := make(map[Identifier]*DKGRound2, len(d.ids))
	var wrong []Identifier
	for _, m := range msgs {
		if m == nil || m.suite != s {
			return nil, errf(ErrSuiteMismatch, "round-two message of another suite")
		}
		if _, ok := d.round1[m.from]; !ok {
			return nil, errf(ErrInvalidIdentifier, "round-two message from %d, not another participant", m.from)
		}
		if _, seen := got[m.from]; seen || m.to != d.cfg.Self || m.share == nil {
			wrong = append(wrong, m.from)
			continue
		}
		got[m.from] = m
	}
	for id := range d.round1 {
		if _, ok := got[id]; !ok {
			wrong = append(wrong, id)
		}
	}
	if len(wrong) > 0 {
		return nil, culprits(ErrMissingMessage, wrong...)
	}
	var bad []Identifier
	for _, id := range d.ids {
		m, ok := got[id]
		if !ok {
			continue
		}
		if !g.newElement().scalarBaseMult(m.share).equal(d.round1[id].commitment.publicShare(d.cfg.Self)) {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		return nil, culprits(ErrShareCommitment, bad...)
	}
	secret := g.newScalar().set(d.ownShare)
	group := &VSSCommitment{suite: s, coeffs: make([]element, d.cfg.Threshold)}
	for k := range group.coeffs {
		group.coeffs[k] = g.newElement().set(d.own.coeffs[k])
	}
	for id, m := range d.round1 {
		secret.add(secret, got[id].share)
		for k := range group.coeffs {
			group.coeffs[k].add(group.coeffs[k], m.commitment.coeffs[k])
		}
	}
	pub, err := group.PublicKey(d.ids)
	if err != nil {
		secret.wipe()
		return nil, err
	}
	return &KeyShare{id: d.cfg.Self, secret: secret, public: pub}, nil
}

// String describes the run without its secrets.
func (d *DKG) String() string {
	return fmt.Sprintf("frost.DKG{participant %d, %d-of-%d, %s, secrets [redacted]}", d.cfg.Self, d.cfg.Threshold, len(d.ids), d.cfg.Suite.id)
}

// GoString is String, so that %#v does not print secrets either.
func (d *DKG) GoString() string { return d.String() }

// Format prints String for every verb.
func (d *DKG) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }

// LogValue keeps the secrets out of structured logs.
func (d *DKG) LogValue() slog.Value { return slog.StringValue(d.String()) }

// Wipe overwrites the run's secrets and ends it (best effort, as for
// [KeyShare.Wipe]).
func (d *DKG) Wipe() {
	wipeAll(d.coeffs)
	d.coeffs = nil
	if d.ownShare != nil {
		d.ownShare.wipe()
		d.ownShare = nil
	}
	d.step = 3
}

// MarshalBinary encodes the broadcast (FORMAT.md, kind 5).
func (m *DKGRound1) MarshalBinary() ([]byte, error) {
	b := appendHeader(nil, kindDKGRound1, m.suite)
	b = appendUint16(b, uint16(m.from))
	b = m.commitment.appendTo(b)
	b = append(b, m.proofR.bytes()...)
	return append(b, m.proofZ.bytes()...), nil
}

// ParseDKGRound1 decodes a broadcast encoded by [DKGRound1.MarshalBinary].
// It checks the encodings only; [DKG.Round2] checks the proof.
func ParseDKGRound1(b []byte) (*DKGRound1, error) {
	r, s := newReader(b, kindDKGRound1)
	if r.err != nil {
		return nil, fmt.Errorf("frost: DKG round 1: %w", r.err)
	}
	m := &DKGRound1{suite: s, from: r.identifier()}
	m.commitment = readVSS(r, s)
	m.proofR = r.element(s.g)
	m.proofZ = r.scalar(s.g)
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: DKG round 1: %w", err)
	}
	return m, nil
}

// MarshalBinary encodes the message with its secret share (FORMAT.md, kind
// 6), for a confidential channel only.
func (m *DKGRound2) MarshalBinary() ([]byte, error) {
	if m.share == nil {
		return nil, ErrWiped
	}
	b := appendHeader(nil, kindDKGRound2, m.suite)
	b = appendUint16(b, uint16(m.from))
	b = appendUint16(b, uint16(m.to))
	return append(b, m.share.bytes()...), nil
}

// ParseDKGRound2 decodes a message encoded by [DKGRound2.MarshalBinary]. The
// caller should overwrite b afterwards.
func ParseDKGRound2(b []byte) (*DKGRound2, error) {
	r, s := newReader(b, kindDKGRound2)
	if r.err != nil {
		return nil, fmt.Errorf("frost: DKG round 2: %w", r.err)
	}
	m := &DKGRound2{suite: s, from: r.identifier(), to: r.identifier(), share: r.scalar(s.g)}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: DKG round 2: %w", err)
	}
	return m, nil
}

// Wipe overwrites the secret share.
func (m *DKGRound2) Wipe() {
	if m.share != nil {
		m.share.wipe()
		m.share = nil
	}
}

// String describes the message without its share.
func (m *DKGRound2) String() string {
	return fmt.Sprintf("frost.DKGRound2{from %d, to %d, share [redacted]}", m.from, m.to)
}

// GoString is String, so that %#v does not print the share either.
func (m *DKGRound2) GoString() string { return m.String() }

// Format prints String for every verb.
func (m *DKGRound2) Format(f fmt.State, _ rune) { fmt.Fprint(f, m.String()) }

// LogValue keeps the share out of structured logs.
func (m *DKGRound2) LogValue() slog.Value { return slog.StringValue(m.String()) }
