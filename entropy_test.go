package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum"
)

// TestNode_SecretsDrawFromTokenRandom checks that a site's keygen and
// signing draw their randomness from the token-mixed source
// (hsmshare.Random), as Status.Entropy reports it.
func TestNode_SecretsDrawFromTokenRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("keygen between two sites takes seconds")
	}
	sites := newSites(t, 2)
	for _, s := range sites {
		s.start(t)
	}
	a, b := sites[0], sites[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	entropy := func() map[*site]keyquorum.EntropyStatus {
		t.Helper()
		out := map[*site]keyquorum.EntropyStatus{}
		for _, s := range sites {
			st, err := s.node.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Entropy.Source != "token+os" || st.Entropy.TokenDraws < 1 {
				t.Fatalf("site %s: entropy %+v, want source token+os with at least one token draw", s.id, st.Entropy)
			}
			out[s] = st.Entropy
		}
		return out
	}
	drew := func(what string, before map[*site]keyquorum.EntropyStatus) {
		t.Helper()
		after := entropy()
		for _, s := range sites {
			// At least the 48-byte seed of the session's own generator.
			if got := after[s].Bytes - before[s].Bytes; got < 48 {
				t.Fatalf("%s: site %s drew %d bytes from the token-mixed source, want at least 48", what, s.id, got)
			}
		}
	}

	before := entropy()
	key, err := a.node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(a, b), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	drew("keygen", before)

	before = entropy()
	digest := sha256.Sum256([]byte("entropy"))
	if _, err := b.node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
		SignOptions: keyquorum.SignOptions{Signers: ids(a, b), Protocol: keyquorum.ProtocolGG18}}); err != nil {
		t.Fatal(err)
	}
	drew("sign", before)
}
