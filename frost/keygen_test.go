package frost

import (
	"bytes"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"testing"
)

func TestDeal_ImportsAnExistingKey(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			secret, err := randomScalar(s, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Deal(s, secret.bytes(), 3, 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := s.g.newElement().scalarBaseMult(secret).bytes(); !bytes.Equal(d.Commitment.GroupKey(), want) {
				t.Fatal("group key is not secret·G")
			}
			// Each participant imports its share from the broadcast
			// commitment (vss_verify and derive_group_info).
			blob, _ := d.Commitment.MarshalBinary()
			vss, err := ParseVSSCommitment(blob)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := vss.PublicKey([]Identifier{1, 2, 3, 4, 5})
			if err != nil {
				t.Fatal(err)
			}
			var shares []*KeyShare
			for _, id := range d.Participants() {
				b, _ := d.Share(id)
				ks, err := NewKeyShare(pub, id, b)
				if err != nil {
					t.Fatal(err)
				}
				shares = append(shares, ks)
			}
			// A share sent to the wrong participant fails vss_verify.
			b2, _ := d.Share(2)
			if _, err := NewKeyShare(pub, 3, b2); !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("NewKeyShare with another participant's share = %v, want ErrKeyMismatch", err)
			}
			d.Wipe()
			if _, err := d.Share(1); !errors.Is(err, ErrWiped) {
				t.Errorf("Share after Wipe = %v, want ErrWiped", err)
			}
			// Any three sign; interpolating any three shares gives the secret.
			signers := []*KeyShare{shares[4], shares[1], shares[2]}
			nonces, pkg := commitAll(t, []byte("imported"), signers...)
			if _, err := pub.Aggregate(pkg, signAll(t, nonces, pkg, signers...)); err != nil {
				t.Fatal(err)
			}
			ids := []Identifier{2, 3, 5}
			sum := s.g.newScalar()
			for _, k := range signers {
				sum.add(sum, s.g.newScalar().mul(lagrange(s.g, ids, k.id, s.g.newScalar()), k.secret))
			}
			if !sum.equal(secret) {
				t.Error("shares do not interpolate to the secret")
			}
		})
	}
}

func TestDeal_RejectsBadParameters(t *testing.T) {
	for _, tc := range []struct {
		name         string
		suite        *Ciphersuite
		secret       []byte
		threshold, n int
		want         error
	}{
		{"nil suite", nil, nil, 2, 3, ErrInvalidParameters},
		{"threshold zero", Ed25519(), nil, 0, 3, ErrInvalidParameters},
		{"threshold above n", Ed25519(), nil, 4, 3, ErrInvalidParameters},
		{"zero secret", Ed25519(), make([]byte, 32), 2, 3, ErrInvalidParameters},
		{"secret not canonical", Secp256k1(), bytes.Repeat([]byte{0xff}, 32), 2, 3, ErrEncoding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Deal(tc.suite, tc.secret, tc.threshold, tc.n, nil); !errors.Is(err, tc.want) {
				t.Fatalf("Deal = %v, want %v", err, tc.want)
			}
		})
	}
}

// dkgRun is a DKG among participants 1..n whose messages pass through their
// encodings; tamper hooks let a test play a cheater.
type dkgRun struct {
	suite        *Ciphersuite
	threshold, n int
	context      func(Identifier) []byte
	tamper1      func(*DKGRound1)
	tamper2      func(*DKGRound2)
}

func (r dkgRun) run(t *testing.T) (map[Identifier]*KeyShare, map[Identifier]error) {
	t.Helper()
	var ids []Identifier
	for i := 1; i <= r.n; i++ {
		ids = append(ids, Identifier(i))
	}
	states := map[Identifier]*DKG{}
	var round1 []*DKGRound1
	for _, id := range ids {
		ctx := []byte("session 42")
		if r.context != nil {
			ctx = r.context(id)
		}
		d, m, err := NewDKG(DKGConfig{Suite: r.suite, Self: id, Participants: ids, Threshold: r.threshold, Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		if r.tamper1 != nil {
			r.tamper1(m)
		}
		b, _ := m.MarshalBinary()
		if m, err = ParseDKGRound1(b); err != nil {
			t.Fatal(err)
		}
		states[id] = d
		round1 = append(round1, m)
	}
	errs := map[Identifier]error{}
	inbox := map[Identifier][]*DKGRound2{}
	for _, id := range ids {
		out, err := states[id].Round2(round1)
		if err != nil {
			errs[id] = err
			continue
		}
		for _, m := range out {
			if r.tamper2 != nil {
				r.tamper2(m)
			}
			b, _ := m.MarshalBinary()
			m.Wipe()
			parsed, err := ParseDKGRound2(b)
			if err != nil {
				t.Fatal(err)
			}
			inbox[m.To()] = append(inbox[m.To()], parsed)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	keys := map[Identifier]*KeyShare{}
	for _, id := range ids {
		ks, err := states[id].Finalize(inbox[id])
		if err != nil {
			errs[id] = err
			continue
		}
		keys[id] = ks
	}
	return keys, errs
}

func TestDKG_ProducesAKeyEveryoneAgreesOn(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			keys, errs := dkgRun{suite: s, threshold: 2, n: 3}.run(t)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			pub := keys[1].PublicKey()
			for _, id := range []Identifier{2, 3} {
				if !keys[id].PublicKey().Equal(pub) {
					t.Fatalf("participant %d computed another public key", id)
				}
			}
			blob, _ := pub.MarshalBinary()
			if parsed, err := ParsePublicKey(blob); err != nil || !parsed.Equal(pub) {
				t.Fatalf("public key does not survive its encoding: %v", err)
			}
			signers := []*KeyShare{keys[3], keys[1]}
			nonces, pkg := commitAll(t, []byte("after DKG"), signers...)
			if s == Secp256k1BIP340() {
				pkg.Taproot = &Taproot{} // a DKG key commits to no script path
			}
			sig, err := pub.Aggregate(pkg, signAll(t, nonces, pkg, signers...))
			if err != nil {
				t.Fatal(err)
			}
			key, _ := pub.SigningKey(pkg.Taproot)
			if err := s.Verify(key, pkg.Message, sig); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDKG_NamesCheaters(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			one := s.g.newScalar().setUint16(1)
			for _, tc := range []struct {
				name    string
				run     dkgRun
				victims []Identifier // participants that must detect it
				culprit []Identifier
				want    error
			}{
				{
					name: "forged proof of knowledge",
					run: dkgRun{tamper1: func(m *DKGRound1) {
						if m.from == 2 {
							m.proofZ = s.g.newScalar().add(m.proofZ, one)
						}
					}},
					victims: []Identifier{1, 3, 4}, culprit: []Identifier{2}, want: ErrProofOfKnowledge,
				},
				{
					name: "proof replayed from another session",
					run: dkgRun{context: func(id Identifier) []byte {
						if id == 4 {
							return []byte("session 41")
						}
						return []byte("session 42")
					}},
					victims: []Identifier{1, 2, 3}, culprit: []Identifier{4}, want: ErrProofOfKnowledge,
				},
				{
					name: "short commitment",
					run: dkgRun{tamper1: func(m *DKGRound1) {
						if m.from == 1 {
							m.commitment.coeffs = m.commitment.coeffs[:1]
						}
					}},
					victims: []Identifier{2, 3, 4}, culprit: []Identifier{1}, want: ErrProofOfKnowledge,
				},
				{
					name: "share off the committed polynomial",
					run: dkgRun{tamper2: func(m *DKGRound2) {
						if m.from == 3 && m.to == 1 {
							m.share = s.g.newScalar().add(m.share, one)
						}
					}},
					victims: []Identifier{1}, culprit: []Identifier{3}, want: ErrShareCommitment,
				},
				{
					name: "share addressed to someone else",
					run: dkgRun{tamper2: func(m *DKGRound2) {
						if m.from == 4 && m.to == 2 {
							m.to = 3
						}
					}},
					victims: []Identifier{2, 3}, culprit: []Identifier{4}, want: ErrMissingMessage,
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tc.run.suite, tc.run.threshold, tc.run.n = s, 3, 4
					_, errs := tc.run.run(t)
					for _, v := range tc.victims {
						var ce *CulpritError
						if err := errs[v]; !errors.Is(err, tc.want) || !errors.As(err, &ce) || !slices.Equal(ce.Parties, tc.culprit) {
							t.Errorf("participant %d: %v, want %v naming %v", v, errs[v], tc.want, tc.culprit)
						}
					}
				})
			}
		})
	}
}

func TestDKG_RejectsBadConfig(t *testing.T) {
	base := DKGConfig{Suite: Ed25519(), Self: 1, Participants: []Identifier{1, 2, 3}, Threshold: 2}
	for _, tc := range []struct {
		name string
		edit func(*DKGConfig)
		want error
	}{
		{"nil suite", func(c *DKGConfig) { c.Suite = nil }, ErrInvalidParameters},
		{"self not a participant", func(c *DKGConfig) { c.Self = 4 }, ErrInvalidIdentifier},
		{"duplicate participant", func(c *DKGConfig) { c.Participants = []Identifier{1, 2, 2} }, ErrInvalidParameters},
		{"zero identifier", func(c *DKGConfig) { c.Participants = []Identifier{0, 1, 2} }, ErrInvalidParameters},
		{"threshold above n", func(c *DKGConfig) { c.Threshold = 4 }, ErrInvalidParameters},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			if _, _, err := NewDKG(cfg); !errors.Is(err, tc.want) {
				t.Fatalf("NewDKG = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDKG_RefusesStepsOutOfOrder(t *testing.T) {
	d, _, err := NewDKG(DKGConfig{Suite: Ed25519(), Self: 1, Participants: []Identifier{1, 2}, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Finalize(nil); !errors.Is(err, ErrWiped) {
		t.Fatalf("Finalize before Round2 = %v", err)
	}
	d.Wipe()
	if _, err := d.Round2(nil); !errors.Is(err, ErrWiped) {
		t.Fatalf("Round2 after Wipe = %v", err)
	}
}

func TestNewPublicKey_RejectsInconsistentShares(t *testing.T) {
	for _, s := range allSuites {
		t.Run(s.ID(), func(t *testing.T) {
			pub, _ := testKey(t, s, 3, 5)
			shares := map[Identifier][]byte{}
			for _, id := range pub.Participants() {
				shares[id], _ = pub.Share(id)
			}
			if _, err := NewPublicKey(s, 3, pub.Bytes(), shares); err != nil {
				t.Fatalf("consistent key: %v", err)
			}
			other, _ := testKey(t, s, 3, 5)
			for _, tc := range []struct {
				name      string
				threshold int
				key       []byte
				swap      Identifier // participant whose share comes from another key
			}{
				{"share of another key (base)", 3, pub.Bytes(), 1},
				{"share of another key (checked)", 3, pub.Bytes(), 5},
				{"group key of another key", 3, other.Bytes(), 0},
				{"threshold below the degree", 2, pub.Bytes(), 0},
			} {
				t.Run(tc.name, func(t *testing.T) {
					m := maps.Clone(shares)
					if tc.swap != 0 {
						m[tc.swap], _ = other.Share(tc.swap)
					}
					if _, err := NewPublicKey(s, tc.threshold, tc.key, m); !errors.Is(err, ErrKeyMismatch) {
						t.Fatalf("NewPublicKey = %v, want ErrKeyMismatch", err)
					}
				})
			}
		})
	}
}
