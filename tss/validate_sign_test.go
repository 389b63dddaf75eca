package tss

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// validationErrors are the sentinels a message rejected before tss-lib
// sees it is reported with.
var validationErrors = []error{
	ErrMalformedMessage, ErrFieldTooLarge, ErrBadCiphertext, ErrProofRange, ErrMissingProof,
	ErrScalarRange, ErrPointNotOnCurve, ErrDecommitment, ErrMtAPlaintext,
}

func isValidationError(err error) bool {
	for _, s := range validationErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fieldVariant is one hostile value for one field of a tss-lib message.
type fieldVariant struct {
	name  string
	apply func(m proto.Message)
}

// hostileVariants lists, for every bytes field and every element of every
// repeated bytes field of a message, the values 0, 1, N, N²−1, too long
// and missing, and for every repeated field one element fewer and one more.
func hostileVariants(m proto.Message, n *big.Int) []fieldVariant {
	nn := new(big.Int).Mul(n, n)
	values := []struct {
		name string
		b    []byte
	}{
		{"0", []byte{0}},
		{"1", []byte{1}},
		{"N", n.Bytes()},
		{"N²−1", new(big.Int).Sub(nn, big.NewInt(1)).Bytes()},
		{"too long", bytes.Repeat([]byte{0x7f}, maxFieldBytes+1)},
		{"missing", nil},
	}
	var out []fieldVariant
	fields := m.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.BytesKind {
			continue
		}
		name := string(fd.Name())
		if !fd.IsList() {
			for _, v := range values {
				out = append(out, fieldVariant{name + " = " + v.name, func(m proto.Message) {
					m.ProtoReflect().Set(fd, protoreflect.ValueOfBytes(v.b))
				}})
			}
			continue
		}
		l := m.ProtoReflect().Get(fd).List()
		for j := 0; j < l.Len(); j++ {
			for _, v := range values {
				out = append(out, fieldVariant{fmt.Sprintf("%s[%d] = %s", name, j, v.name), func(m proto.Message) {
					m.ProtoReflect().Mutable(fd).List().Set(j, protoreflect.ValueOfBytes(v.b))
				}})
			}
		}
		out = append(out,
			fieldVariant{name + " one element short", func(m proto.Message) {
				l := m.ProtoReflect().Mutable(fd).List()
				l.Truncate(l.Len() - 1)
			}},
			fieldVariant{name + " one element more", func(m proto.Message) {
				l := m.ProtoReflect().Mutable(fd).List()
				l.Append(l.Get(l.Len() - 1))
			}},
		)
	}
	return out
}

// passesValidation lists the hostile values that are well-formed on their
// own, so no check of the message alone can refuse them: a commitment is
// any hash value, δ and s any scalar, and some proof values are in range.
// They are caught later, by the opening of the commitment or by tss-lib's
// proof checks, which name the sender, or — δ and s, which GG18 cannot
// attribute — end the session without naming anyone.
var passesValidation = map[string]bool{
	// Round 1: Enc(0; 1) and −1 are units mod N²; u, w are units, s2 = N
	// is below 2q³Ñ. tss-lib's range proof check then names the sender.
	"SignRound1Message1/c = 1":                       true,
	"SignRound1Message1/c = N²−1":                    true,
	"SignRound1Message1/range_proof_alice[1] = 1":    true,
	"SignRound1Message1/range_proof_alice[1] = N²−1": true,
	"SignRound1Message1/range_proof_alice[2] = 1":    true,
	"SignRound1Message1/range_proof_alice[5] = N":    true,
	// A commitment is any hash value; its opening fails.
	"SignRound1Message2/commitment = 0": true,
	"SignRound1Message2/commitment = 1": true,
	// Round 2: units and in-range responses; tss-lib's Bob proof checks
	// name the sender.
	"SignRound2Message/c1 = 1":                 true,
	"SignRound2Message/c1 = N²−1":              true,
	"SignRound2Message/c2 = 1":                 true,
	"SignRound2Message/c2 = N²−1":              true,
	"SignRound2Message/proof_bob[0] = 1":       true,
	"SignRound2Message/proof_bob[1] = 1":       true,
	"SignRound2Message/proof_bob[2] = 1":       true,
	"SignRound2Message/proof_bob[3] = 1":       true,
	"SignRound2Message/proof_bob[3] = N²−1":    true,
	"SignRound2Message/proof_bob[4] = 1":       true,
	"SignRound2Message/proof_bob[5] = 1":       true,
	"SignRound2Message/proof_bob[7] = N":       true,
	"SignRound2Message/proof_bob[9] = N":       true,
	"SignRound2Message/proof_bob_wc[0] = 1":    true,
	"SignRound2Message/proof_bob_wc[1] = 1":    true,
	"SignRound2Message/proof_bob_wc[2] = 1":    true,
	"SignRound2Message/proof_bob_wc[3] = 1":    true,
	"SignRound2Message/proof_bob_wc[3] = N²−1": true,
	"SignRound2Message/proof_bob_wc[4] = 1":    true,
	"SignRound2Message/proof_bob_wc[5] = 1":    true,
	"SignRound2Message/proof_bob_wc[7] = N":    true,
	"SignRound2Message/proof_bob_wc[9] = N":    true,
	// δ is any scalar: GG18 finds a wrong one only in phase 5, which names
	// no one.
	"SignRound3Message/theta = 0": true,
	"SignRound3Message/theta = 1": true,
	// Schnorr responses are any non-zero scalar; tss-lib's proof checks
	// name the sender.
	"SignRound4Message/proof_t = 1":    true,
	"SignRound5Message/commitment = 0": true,
	"SignRound5Message/commitment = 1": true,
	"SignRound6Message/proof_t = 1":    true,
	"SignRound6Message/v_proof_t = 1":  true,
	"SignRound6Message/v_proof_u = 1":  true,
	"SignRound7Message/commitment = 0": true,
	"SignRound7Message/commitment = 1": true,
	// s is any scalar; a wrong one makes the signature fail, which GG18
	// cannot attribute.
	"SignRound9Message/s = 0": true,
	"SignRound9Message/s = 1": true,
}

func shortName(m proto.Message) string {
	return string(m.ProtoReflect().Descriptor().Name())
}

// TestSign_HostileFieldValues hands party A of a 2-of-3 fixture key, in a
// live GG18 signing with B, every round's message from B with each field
// set to 0, 1, N, N²−1, too long or missing (and each list one element
// short or long). A never panics; a value that no honest party sends is
// refused before tss-lib sees it, with a culprit error naming B; a value
// that is well-formed on its own (passesValidation) ends the session later,
// never with a signature and never naming A.
func TestSign_HostileFieldValues(t *testing.T) {
	if testing.Short() {
		t.Skip("runs many signing sessions")
	}
	shares := fixtureShares(t, "2-of-3", 2)
	nA, nB := shares[0].Data.PaillierSK.N, shares[1].Data.PaillierPKs[1].N
	if shares[1].Data.PaillierSK.N.Cmp(nB) != 0 {
		t.Fatal("fixture party order and Paillier key order differ")
	}
	for round := uint32(1); round <= uint32(len(signSpecs)); round++ {
		t.Run(shortType(signSpecs[round-1].name), func(t *testing.T) {
			t.Parallel()
			var remaining []fieldVariant
			var kind string
			first := true
			for first || len(remaining) > 0 {
				sp := newSignPair(t, fixtureShares(t, "2-of-3", 2), 0, 1)
				msg := sp.next(0, round)
				if first {
					rewritePayload(t, msg.payload, func(m proto.Message) {
						kind = shortName(m)
						n := nB
						if kind == "SignRound2Message" {
							n = nA // ciphertexts under A's key
						}
						remaining = hostileVariants(m, n)
					})
					first = false
				}
				tainted := false
				for len(remaining) > 0 && !tainted {
					v := remaining[0]
					remaining = remaining[1:]
					name := kind + "/" + v.name
					bad := msg
					bad.payload = rewritePayload(t, msg.payload, v.apply)
					_, err := safeHandle(sp.p[0], bad)
					if err != nil && isValidationError(err) {
						// Refused before tss-lib: A is as it was.
						checkCulprit(t, name, err, sp.ids[1])
						if passesValidation[name] {
							t.Errorf("%s: refused by validation (%v), but is listed as passing it", name, err)
						}
						continue
					}
					// Accepted by validation: A's tss-lib party holds the
					// hostile value now, so this session ends here.
					tainted = true
					if !passesValidation[name] {
						t.Errorf("%s: passed validation", name)
					}
					signed := false
					if err == nil {
						err, signed = sp.finish()
					}
					switch {
					case err != nil && strings.Contains(err.Error(), "PANIC"):
						t.Errorf("%s: %v", name, err)
					case signed:
						t.Errorf("%s: A signed", name)
					case err == nil:
						t.Logf("%s: accepted by validation; B aborted, A got no signature", name)
					default:
						var ce *CulpritError
						if errors.As(err, &ce) {
							checkCulprit(t, name, err, sp.ids[1])
						}
						t.Logf("%s: accepted by validation, then: %v", name, err)
					}
				}
				sp.wipe()
			}
		})
	}
}

// checkCulprit checks that err is a culprit error naming exactly culprit.
func checkCulprit(t *testing.T, name string, err error, culprit PartyID) {
	t.Helper()
	if strings.Contains(err.Error(), "PANIC") {
		t.Errorf("%s: %v", name, err)
		return
	}
	var ce *CulpritError
	if !errors.As(err, &ce) || len(ce.Parties) != 1 || ce.Parties[0] != culprit {
		t.Errorf("%s: got %v, want a culprit error naming %s", name, err, culprit)
	}
}

// TestSign_MtAPlaintextOutOfRange sends party A, in round 2 of a live
// signing, an MtA ciphertext that decrypts to N − 1 — what a Bob who
// chose a "negative" mask sends (Alpha-Rays, eprint 2021/1621) — with
// every proof value in range. tss-lib v2.0.2 reduces the plaintext mod q
// without looking at it; the validator refuses it and names B.
func TestSign_MtAPlaintextOutOfRange(t *testing.T) {
	shares := fixtureShares(t, "2-of-3", 2)
	sp := newSignPair(t, shares, 0, 1)
	defer sp.wipe()
	msg := sp.next(0, 3)
	pk := &shares[0].Data.PaillierSK.PublicKey
	for _, field := range []string{"c1", "c2"} {
		ct, err := pk.Encrypt(rand.Reader, new(big.Int).Sub(pk.N, big.NewInt(1)))
		if err != nil {
			t.Fatal(err)
		}
		bad := msg
		bad.payload = rewritePayload(t, msg.payload, func(m proto.Message) {
			r2 := m.(*signing.SignRound2Message)
			if field == "c1" {
				r2.C1 = ct.Bytes()
			} else {
				r2.C2 = ct.Bytes()
			}
		})
		_, err = safeHandle(sp.p[0], bad)
		if !errors.Is(err, ErrMtAPlaintext) {
			t.Fatalf("%s = Enc(N − 1): got %v, want ErrMtAPlaintext", field, err)
		}
		checkCulprit(t, field, err, sp.ids[1])
	}
	// The honest message still goes through and the signature completes.
	if err := sp.deliver(routed{to: 0, in: msg}); err != nil {
		t.Fatalf("honest round-2 message after the refused ones: %v", err)
	}
	if err, signed := sp.finish(); err != nil || !signed {
		t.Fatalf("signing after the refused messages: %v (signed %v)", err, signed)
	}
}

// TestSigningTarget_RejectsZeroMessage: a digest that is 0 modulo q is
// refused before any session starts (tss-lib v2.0.2 accepts m = 0; later
// versions refuse it).
func TestSigningTarget_RejectsZeroMessage(t *testing.T) {
	share := fixtureShares(t, "2-of-3", 2)[0]
	for _, d := range []*big.Int{new(big.Int), new(big.Int).Set(curveQ)} {
		var digest [32]byte
		d.FillBytes(digest[:])
		if _, err := newSigningTarget(share, digest[:], ""); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("digest %x: got %v, want ErrBadRequest", digest, err)
		}
	}
}
