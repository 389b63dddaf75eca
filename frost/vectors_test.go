package frost

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// rfcVector is the layout of testdata/rfc9591-*.json (RFC 9591 Appendix E).
type rfcVector struct {
	Ciphersuite       string            `json:"ciphersuite"`
	MinParticipants   int               `json:"min_participants"`
	ParticipantList   []int             `json:"participant_list"`
	GroupSecretKey    string            `json:"group_secret_key"`
	GroupPublicKey    string            `json:"group_public_key"`
	Message           string            `json:"message"`
	Coefficients      []string          `json:"share_polynomial_coefficients"`
	ParticipantShares map[string]string `json:"participant_shares"`
	RoundOne          map[string]struct {
		HidingRandomness  string `json:"hiding_nonce_randomness"`
		BindingRandomness string `json:"binding_nonce_randomness"`
		HidingNonce       string `json:"hiding_nonce"`
		BindingNonce      string `json:"binding_nonce"`
		HidingCommitment  string `json:"hiding_nonce_commitment"`
		BindingCommitment string `json:"binding_nonce_commitment"`
		BindingFactor     string `json:"binding_factor"`
	} `json:"round_one_outputs"`
	RoundTwo map[string]struct {
		SigShare string `json:"sig_share"`
	} `json:"round_two_outputs"`
	Sig string `json:"sig"`
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadRFCVector(t *testing.T, file string) rfcVector {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRFC9591Vectors runs the test vectors of RFC 9591 Appendix E.1
// (FROST(Ed25519, SHA-512)) and E.5 (FROST(secp256k1, SHA-256)) through the
// exported API, checking every intermediate value the RFC lists.
func TestRFC9591Vectors(t *testing.T) {
	for _, tc := range []struct {
		file  string
		suite *Ciphersuite
	}{
		{"testdata/rfc9591-ed25519-sha512.json", Ed25519()},
		{"testdata/rfc9591-secp256k1-sha256.json", Secp256k1()},
	} {
		t.Run(tc.suite.ID(), func(t *testing.T) {
			v := loadRFCVector(t, tc.file)
			if v.Ciphersuite != tc.suite.ID() {
				t.Fatalf("vector is for %s", v.Ciphersuite)
			}
			g := tc.suite.g

			// Appendix C: the dealer's polynomial gives the listed shares.
			secret, err := g.decodeScalar(unhex(t, v.GroupSecretKey))
			if err != nil {
				t.Fatal(err)
			}
			coeffs := []scalar{secret}
			for _, c := range v.Coefficients {
				s, err := g.decodeScalar(unhex(t, c))
				if err != nil {
					t.Fatal(err)
				}
				coeffs = append(coeffs, s)
			}
			publicShares := map[Identifier][]byte{}
			for idStr, want := range v.ParticipantShares {
				id := mustID(t, idStr)
				if got := evalPolynomial(g, coeffs, identifierScalar(g, id)).bytes(); !bytes.Equal(got, unhex(t, want)) {
					t.Errorf("share of participant %d = %x, want %s", id, got, want)
				}
				sk, _ := g.decodeScalar(unhex(t, want))
				publicShares[id] = g.newElement().scalarBaseMult(sk).bytes()
			}
			if got := g.newElement().scalarBaseMult(secret).bytes(); !bytes.Equal(got, unhex(t, v.GroupPublicKey)) {
				t.Errorf("group public key = %x, want %s", got, v.GroupPublicKey)
			}
			pub, err := NewPublicKey(tc.suite, v.MinParticipants, unhex(t, v.GroupPublicKey), publicShares)
			if err != nil {
				t.Fatal(err)
			}

			// Round one, with the listed randomness.
			keyShares := map[Identifier]*KeyShare{}
			nonces := map[Identifier]*Nonce{}
			pkg := &SigningPackage{Message: unhex(t, v.Message)}
			for _, i := range v.ParticipantList {
				id := Identifier(i)
				r1 := v.RoundOne[strconv.Itoa(i)]
				ks, err := NewKeyShare(pub, id, unhex(t, v.ParticipantShares[strconv.Itoa(i)]))
				if err != nil {
					t.Fatal(err)
				}
				keyShares[id] = ks
				rnd := bytes.NewReader(append(unhex(t, r1.HidingRandomness), unhex(t, r1.BindingRandomness)...))
				n, c, err := ks.Commit(rnd)
				if err != nil {
					t.Fatal(err)
				}
				for _, chk := range []struct{ name, got, want string }{
					{"hiding nonce", hex.EncodeToString(n.st.hiding.bytes()), r1.HidingNonce},
					{"binding nonce", hex.EncodeToString(n.st.binding.bytes()), r1.BindingNonce},
					{"hiding commitment", hex.EncodeToString(c.hiding.bytes()), r1.HidingCommitment},
					{"binding commitment", hex.EncodeToString(c.binding.bytes()), r1.BindingCommitment},
				} {
					if chk.got != chk.want {
						t.Errorf("participant %d %s = %s, want %s", id, chk.name, chk.got, chk.want)
					}
				}
				nonces[id] = n
				pkg.Commitments = append(pkg.Commitments, c)
			}
			ses, err := pub.newSession(pkg)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range v.ParticipantList {
				if got, want := hex.EncodeToString(ses.rho[Identifier(i)].bytes()), v.RoundOne[strconv.Itoa(i)].BindingFactor; got != want {
					t.Errorf("participant %d binding factor = %s, want %s", i, got, want)
				}
			}

			// Round two and aggregation.
			var shares []*SignatureShare
			for _, i := range v.ParticipantList {
				id := Identifier(i)
				sh, err := keyShares[id].Sign(nonces[id], pkg)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := hex.EncodeToString(sh.z.bytes()), v.RoundTwo[strconv.Itoa(i)].SigShare; got != want {
					t.Errorf("participant %d signature share = %s, want %s", id, got, want)
				}
				if err := pub.VerifyShare(pkg, sh); err != nil {
					t.Errorf("participant %d share: %v", id, err)
				}
				shares = append(shares, sh)
			}
			sig, err := pub.Aggregate(pkg, shares)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sig); got != v.Sig {
				t.Errorf("signature = %s, want %s", got, v.Sig)
			}
			if err := tc.suite.Verify(pub.Bytes(), pkg.Message, sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if tc.suite == Ed25519() && !ed25519.Verify(pub.Bytes(), pkg.Message, sig) {
				t.Error("crypto/ed25519 rejects the signature")
			}
		})
	}
}

func mustID(t *testing.T, s string) Identifier {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		t.Fatalf("bad identifier %q", s)
	}
	return Identifier(n)
}
