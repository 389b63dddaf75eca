package frost

import "encoding/binary"

// Wire formats; FORMAT.md specifies them. Every blob starts with a version
// byte, a kind byte and a suite byte.

const formatVersion = 1

const (
	kindPublicKey      = 1
	kindCommitment     = 2
	kindSignatureShare = 3
	kindVSSCommitment  = 4
	kindDKGRound1      = 5
	kindDKGRound2      = 6
)

// maxParticipants bounds the participants of a key and every count read
// from the wire, so that no input makes a decoder allocate more than a few
// kilobytes per element or check a public key for more than about a second.
const maxParticipants = 256

func appendHeader(b []byte, kind byte, s *Ciphersuite) []byte {
	return append(b, formatVersion, kind, s.code)
}

// reader consumes a blob; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func newReader(b []byte, kind byte) (*reader, *Ciphersuite) {
	r := &reader{b: b}
	h := r.next(3)
	if r.err != nil {
		return r, nil
	}
	if h[0] != formatVersion {
		r.fail(errEncoding("unknown format version %d", h[0]))
		return r, nil
	}
	if h[1] != kind {
		r.fail(errEncoding("blob of kind %d, want %d", h[1], kind))
		return r, nil
	}
	s := suiteByCode(h[2])
	if s == nil {
		r.fail(errEncoding("unknown ciphersuite %d", h[2]))
	}
	return r, s
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(errEncoding("blob is truncated"))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) uint16() uint16 {
	b := r.next(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) identifier() Identifier {
	id := Identifier(r.uint16())
	if r.err == nil && id == 0 {
		r.fail(errf(ErrEncoding, "identifier is zero"))
	}
	return id
}

func (r *reader) count() int {
	n := int(r.uint16())
	if r.err == nil && (n == 0 || n > maxParticipants) {
		r.fail(errEncoding("count %d out of range", n))
	}
	return n
}

func (r *reader) scalar(g group) scalar {
	b := r.next(g.scalarLen())
	if b == nil {
		return nil
	}
	s, err := g.decodeScalar(b)
	if err != nil {
		r.fail(err)
	}
	return s
}

func (r *reader) element(g group) element {
	b := r.next(g.elementLen())
	if b == nil {
		return nil
	}
	e, err := g.decodeElement(b)
	if err != nil {
		r.fail(err)
	}
	return e
}

// done reports the sticky error, or an error if bytes remain.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(errEncoding("%d trailing bytes", len(r.b)))
	}
	return r.err
}

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
