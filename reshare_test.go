package keyquorum_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyquorum/keyquorum"
	"github.com/keyquorum/keyquorum/internal/fixtures"
	"github.com/keyquorum/keyquorum/tss"
)

// importFixture gives a running site pre-parameter fixture i (each
// fixture to one site only).
func importFixture(t *testing.T, s *site, i int) {
	t.Helper()
	raw, err := fixtures.PreParamsJSON(i)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := keyquorum.ParsePreParams(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.node.ImportPreParams(context.Background(), pp); err != nil {
		t.Fatal(err)
	}
}

// TestReshare_NeedsEverySiteAuthorization: a committee member that
// proposes a reshare the other sites' operators did not authorize is
// refused by them, naming it, and the key stays as it was (same epoch,
// committee and public key, and it still signs). A reshare that every
// other site authorized, with exactly that committee and threshold, goes
// through its phases and keeps the public key.
func TestReshare_NeedsEverySiteAuthorization(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen and resharing between three sites take a minute")
	}
	sites := newSites(t, 3)
	for _, s := range sites {
		s.start(t)
	}
	a, b, c := sites[0], sites[1], sites[2]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b, c), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sites {
		importFixture(t, s, 3+i)
	}
	pub, err := secp256k1.ParsePubKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		for _, s := range sites {
			k, err := s.node.Key(ctx, key.ID)
			if err != nil || k.Epoch != 1 || k.Threshold != 2 || !slices.Equal(k.Parties, key.Parties) || !bytes.Equal(k.PublicKey, key.PublicKey) {
				t.Fatalf("%s: site %s holds %+v, %v; want the key as keygen made it", what, s.id, k, err)
			}
		}
		digest := sha256.Sum256([]byte(what))
		sig, err := b.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ids(b, c)}})
		if err != nil {
			t.Fatalf("%s: the old shares no longer sign: %v", what, err)
		}
		verifyIndependently(t, sig, digest, pub)
	}
	refusedBy := func(t *testing.T, err error, proposer tss.PartyID) {
		t.Helper()
		var ref *tss.RefusedError
		if !errors.As(err, &ref) || !errors.Is(err, tss.ErrPolicy) || (ref.Party != b.id && ref.Party != c.id) {
			t.Fatalf("got %v; want a policy refusal by %s or %s", err, b.id, c.id)
		}
		if !bytes.Contains([]byte(ref.Reason), []byte(string(proposer))) {
			t.Fatalf("the refusal %q does not name the proposer %s", ref.Reason, proposer)
		}
	}

	t.Run("UnauthorizedProposalIsRefused", func(t *testing.T) {
		// Site a runs modified code and moves the key to a 2-of-2 of
		// itself and b; nobody authorized it.
		_, err := keyquorum.CompromisedEngine(a.node).Reshare(ctx, tss.ReshareRequest{KeyID: key.ID, NewParties: ids(a, b), NewThreshold: 2})
		refusedBy(t, err, a.id)
		unchanged(t, "after an unauthorized reshare")
	})

	t.Run("OtherCommitteeThanAuthorizedIsRefused", func(t *testing.T) {
		exp := time.Now().Add(10 * time.Minute)
		for _, s := range []*site{b, c} {
			if err := s.node.AuthorizeReshare(ctx, keyquorum.ReshareAuthorization{KeyID: key.ID, NewParties: ids(a, b, c), NewThreshold: 3, Expires: exp}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.node.Reshare(ctx, keyquorum.ReshareRequest{KeyID: key.ID, NewParties: ids(a, b, c), NewThreshold: 2})
		var ref *tss.RefusedError
		if !errors.As(err, &ref) || !errors.Is(err, tss.ErrPolicy) || (ref.Party != a.id && ref.Party != b.id) {
			t.Fatalf("got %v; want a policy refusal by a (no authorization) or b (another threshold)", err)
		}
		unchanged(t, "after a reshare to another threshold than authorized")
	})

	t.Run("AuthorizedReshareKeepsThePublicKey", func(t *testing.T) {
		exp := time.Now().Add(10 * time.Minute)
		for _, s := range []*site{b, c} {
			if err := s.node.AuthorizeReshare(ctx, keyquorum.ReshareAuthorization{KeyID: key.ID, NewParties: ids(a, b, c), NewThreshold: 3, Expires: exp}); err != nil {
				t.Fatal(err)
			}
		}
		info, err := a.node.Reshare(ctx, keyquorum.ReshareRequest{KeyID: key.ID, NewParties: ids(a, b, c), NewThreshold: 3})
		if err != nil {
			t.Fatal(err)
		}
		if info.Epoch != 2 || info.Threshold != 3 || !bytes.Equal(info.PublicKey, key.PublicKey) || !bytes.Equal(info.ChainCode, key.ChainCode) {
			t.Fatalf("after the reshare: %+v; want epoch 2, 3-of-3, the same public key and chain code", info)
		}
		for _, s := range sites {
			k, err := s.node.Key(ctx, key.ID)
			if err != nil || k.Epoch != 2 || k.Threshold != 3 || !bytes.Equal(k.PublicKey, key.PublicKey) {
				t.Fatalf("site %s holds %+v, %v", s.id, k, err)
			}
			st, err := s.node.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Reshares) != 1 || st.Reshares[0].Phase != "committed" || st.Reshares[0].PendingEpoch != 2 || st.Reshares[0].Initiator != a.id {
				t.Fatalf("site %s status reshares: %+v; want the committed epoch-2 reshare a proposed", s.id, st.Reshares)
			}
		}
		digest := sha256.Sum256([]byte("after the reshare"))
		sig, err := a.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ids(a, b, c)}})
		if err != nil {
			t.Fatal(err)
		}
		verifyIndependently(t, sig, digest, pub)
		if _, err := b.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest, SignOptions: keyquorum.SignOptions{Signers: ids(b, c)}}); !errors.Is(err, tss.ErrBadRequest) {
			t.Fatalf("two signers of a 3-of-3 key: %v; want ErrBadRequest", err)
		}
	})

	t.Run("AuthorizationIsUsedUp", func(t *testing.T) {
		// The authorization ended with the commit: the same reshare again
		// (to 3-of-3 at epoch 3) is refused.
		for i, s := range sites {
			importFixture(t, s, 6+i)
		}
		_, err := a.node.Reshare(ctx, keyquorum.ReshareRequest{KeyID: key.ID, NewParties: ids(a, b, c), NewThreshold: 3})
		refusedBy(t, err, a.id)
	})
}
