package frost

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// A VSSCommitment is a Feldman verifiable-secret-sharing commitment to a
// polynomial f of degree threshold−1: the points φ_k = a_k·G of its
// coefficients, constant term first (RFC 9591 Appendix C.2, vss_commit). Its
// first point is the group public key. It is public and must reach every
// participant identically (over a broadcast channel).
type VSSCommitment struct {
	suite  *Ciphersuite
	coeffs []element
}

// Threshold returns the number of signers the committed sharing needs: the
// number of coefficients.
func (c *VSSCommitment) Threshold() int { return len(c.coeffs) }

// GroupKey returns the group public key φ_0 in the suite's SerializeElement
// encoding.
func (c *VSSCommitment) GroupKey() []byte { return c.coeffs[0].bytes() }

// publicShare is Σ_k φ_k·x^k = f(x)·G, participant x's public share (RFC
// 9591 Appendix C.2, derive_group_info).
func (c *VSSCommitment) publicShare(id Identifier) element {
	g := c.suite.g
	x := identifierScalar(g, id)
	acc := g.newElement()
	for k := len(c.coeffs) - 1; k >= 0; k-- {
		acc.scalarMult(x, acc)
		acc.add(acc, c.coeffs[k])
	}
	return acc
}

// PublicKey derives the [PublicKey] of the sharing for the given
// participants: the group key φ_0 and the public share of each (RFC 9591
// Appendix C.2, derive_group_info). Pass the result to [NewKeyShare] with a
// participant's secret share; that check is vss_verify.
func (c *VSSCommitment) PublicKey(participants []Identifier) (*PublicKey, error) {
	if len(participants) < len(c.coeffs) || len(participants) > maxParticipants {
		return nil, errf(ErrInvalidParameters, "%d participants for a threshold of %d", len(participants), len(c.coeffs))
	}
	if c.coeffs[0].isIdentity() {
		return nil, errf(ErrKeyMismatch, "group key is the identity")
	}
	p := &PublicKey{suite: c.suite, threshold: len(c.coeffs), key: c.coeffs[0], shares: make(map[Identifier]element, len(participants))}
	for _, id := range participants {
		if id == 0 {
			return nil, errf(ErrInvalidIdentifier, "identifier 0")
		}
		if _, dup := p.shares[id]; dup {
			return nil, errf(ErrInvalidParameters, "participant %d listed twice", id)
		}
		s := c.publicShare(id)
		if s.isIdentity() {
			return nil, errf(ErrKeyMismatch, "public share of participant %d is the identity", id)
		}
		p.shares[id] = s
	}
	return p, nil
}

// MarshalBinary encodes the commitment (FORMAT.md, kind 4).
func (c *VSSCommitment) MarshalBinary() ([]byte, error) {
	return c.appendTo(appendHeader(nil, kindVSSCommitment, c.suite)), nil
}

func (c *VSSCommitment) appendTo(b []byte) []byte {
	b = appendUint16(b, uint16(len(c.coeffs)))
	for _, e := range c.coeffs {
		b = append(b, e.bytes()...)
	}
	return b
}

// ParseVSSCommitment decodes a commitment encoded by
// [VSSCommitment.MarshalBinary].
func ParseVSSCommitment(b []byte) (*VSSCommitment, error) {
	r, s := newReader(b, kindVSSCommitment)
	if r.err != nil {
		return nil, fmt.Errorf("frost: VSS commitment: %w", r.err)
	}
	c := readVSS(r, s)
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("frost: VSS commitment: %w", err)
	}
	return c, nil
}

func readVSS(r *reader, s *Ciphersuite) *VSSCommitment {
	n := r.count()
	c := &VSSCommitment{suite: s}
	for i := 0; i < n && r.err == nil; i++ {
		c.coeffs = append(c.coeffs, r.element(s.g))
	}
	return c
}

// vssCommit is vss_commit of RFC 9591 Appendix C.2.
func vssCommit(s *Ciphersuite, coeffs []scalar) *VSSCommitment {
	c := &VSSCommitment{suite: s}
	for _, a := range coeffs {
		c.coeffs = append(c.coeffs, s.g.newElement().scalarBaseMult(a))
	}
	return c
}

// evalPolynomial evaluates the polynomial with coefficients coeffs (constant
// term first) at x with Horner's rule (RFC 9591 Appendix C.1,
// polynomial_evaluate).
func evalPolynomial(g group, coeffs []scalar, x scalar) scalar {
	v := g.newScalar()
	for i := len(coeffs) - 1; i >= 0; i-- {
		v.mul(v, x)
		v.add(v, coeffs[i])
	}
	return v
}

// randomScalar draws a uniformly random scalar by wide reduction (RFC 9591
// Appendix D.2): 64 bytes for Ed25519, 48 for secp256k1.
func randomScalar(s *Ciphersuite, rand io.Reader) (scalar, error) {
	n := 48
	if s.isEd25519() {
		n = 64
	}
	buf := make([]byte, n)
	defer clear(buf)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, fmt.Errorf("frost: randomness: %w", err)
	}
	if s.isEd25519() {
		return new(edScalar).setWide(buf), nil
	}
	return new(kScalar).setReduced(buf), nil
}

// randomPolynomial returns threshold random coefficients; if secret is not
// nil it is the constant term.
func randomPolynomial(s *Ciphersuite, secret scalar, threshold int, rand io.Reader) ([]scalar, error) {
	coeffs := make([]scalar, threshold)
	start := 0
	if secret != nil {
		coeffs[0] = s.g.newScalar().set(secret)
		start = 1
	}
	for i := start; i < threshold; i++ {
		a, err := randomScalar(s, rand)
		if err != nil {
			wipeAll(coeffs)
			return nil, err
		}
		coeffs[i] = a
	}
	return coeffs, nil
}

func wipeAll(s []scalar) {
	for _, x := range s {
		if x != nil {
			x.wipe()
		}
	}
}

// A Dealing is the output of trusted-dealer key generation (RFC 9591
// Appendix C, trusted_dealer_keygen): the public [VSSCommitment] for every
// participant and each participant's secret share. The dealer sends each
// participant its share over a confidential, authenticated channel and the
// commitment over a broadcast channel, then calls [Dealing.Wipe]. A Dealing
// never prints its secrets.
type Dealing struct {
	// Commitment is the public commitment to the sharing polynomial.
	Commitment *VSSCommitment
	shares     map[Identifier]scalar
}

// Deal splits a secret threshold-of-n among participants 1..n with Shamir
// secret sharing and commits to the polynomial (RFC 9591 Appendix C). secret
// is the group secret key in the suite's SerializeScalar encoding, for
// importing an existing key, or nil to draw a fresh one. rand is normally
// crypto/rand.Reader (nil means crypto/rand.Reader).
//
// The dealer knows the whole key: use Deal for tests and for importing a
// key that already exists, and [NewDKG] otherwise.
func Deal(suite *Ciphersuite, secret []byte, threshold, n int, rand io.Reader) (*Dealing, error) {
	if !suite.valid() {
		return nil, errf(ErrInvalidParameters, "unknown ciphersuite")
	}
	if threshold < 1 || n < threshold || n > maxParticipants {
		return nil, errf(ErrInvalidParameters, "threshold %d of %d participants", threshold, n)
	}
	rand = orCryptoRand(rand)
	var s scalar
	if secret != nil {
		var err error
		if s, err = suite.g.decodeScalar(secret); err != nil {
			return nil, fmt.Errorf("frost: group secret: %w", err)
		}
		defer s.wipe()
		if s.isZero() {
			return nil, errf(ErrInvalidParameters, "group secret is zero")
		}
	}
	coeffs, err := randomPolynomial(suite, s, threshold, rand)
	if err != nil {
		return nil, err
	}
	defer wipeAll(coeffs)
	d := &Dealing{Commitment: vssCommit(suite, coeffs), shares: make(map[Identifier]scalar, n)}
	for i := 1; i <= n; i++ {
		id := Identifier(i)
		d.shares[id] = evalPolynomial(suite.g, coeffs, identifierScalar(suite.g, id))
	}
	return d, nil
}

// Participants returns the identifiers 1..n of the dealing.
func (d *Dealing) Participants() []Identifier {
	ids := make([]Identifier, 0, len(d.shares))
	for id := range d.shares {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Share returns a copy of participant id's secret share in the suite's
// SerializeScalar encoding, to send to that participant, who imports it
// with [VSSCommitment.PublicKey] and [NewKeyShare]. It returns an error
// wrapping [ErrWiped] after [Dealing.Wipe].
func (d *Dealing) Share(id Identifier) ([]byte, error) {
	s, ok := d.shares[id]
	if !ok {
		if d.shares == nil {
			return nil, ErrWiped
		}
		return nil, errf(ErrInvalidIdentifier, "no participant %d", id)
	}
	return s.bytes(), nil
}

// KeyShares returns every participant's [KeyShare], for tests and for a
// dealer that hands shares over in its own format.
func (d *Dealing) KeyShares() ([]*KeyShare, error) {
	pub, err := d.Commitment.PublicKey(d.Participants())
	if err != nil {
		return nil, err
	}
	var out []*KeyShare
	for _, id := range d.Participants() {
		b, err := d.Share(id)
		if err != nil {
			return nil, err
		}
		ks, err := NewKeyShare(pub, id, b)
		clear(b)
		if err != nil {
			return nil, err
		}
		out = append(out, ks)
	}
	return out, nil
}

// Wipe overwrites every secret share (best effort, as for [KeyShare.Wipe]).
func (d *Dealing) Wipe() {
	for _, s := range d.shares {
		s.wipe()
	}
	d.shares = nil
}

// String describes the dealing without its secrets.
func (d *Dealing) String() string {
	if d == nil || d.Commitment == nil {
		return "frost.Dealing{}"
	}
	return fmt.Sprintf("frost.Dealing{%s, %d-of-%d, shares [redacted]}", d.Commitment.suite.id, d.Commitment.Threshold(), len(d.shares))
}

// GoString is String, so that %#v does not print secrets either.
func (d *Dealing) GoString() string { return d.String() }

// Format prints String for every verb.
func (d *Dealing) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }

// LogValue keeps the secrets out of structured logs.
func (d *Dealing) LogValue() slog.Value { return slog.StringValue(d.String()) }

func orCryptoRand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
