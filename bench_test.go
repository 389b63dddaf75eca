package keyquorum_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/keyquorum/keyquorum"
)

// BenchmarkNodeSign measures one 2-of-3 signature through the Node
// facade, three sites in this process over libp2p on 127.0.0.1, each with
// its own SoftHSM2 token: classic GG18 signing, and GG20 online signing
// from presignatures made before the timer starts.
func BenchmarkNodeSign(b *testing.B) {
	sites := newSites(b, 3)
	for _, s := range sites {
		s.start(b)
	}
	ctx := context.Background()
	key, err := sites[0].node.Keygen(ctx, keyquorum.KeygenRequest{Parties: ids(sites...), Threshold: 2})
	if err != nil {
		b.Fatal(err)
	}
	signers := ids(sites[:2]...)
	digest := sha256.Sum256([]byte("benchmark"))
	b.Run("gg18", func(b *testing.B) {
		for range b.N {
			if _, err := sites[0].node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
				SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolGG18}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gg20-online", func(b *testing.B) {
		b.StopTimer()
		if _, err := sites[0].node.Presign(ctx, keyquorum.PresignRequest{KeyID: key.ID, Signers: signers, Count: b.N}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for range b.N {
			if _, err := sites[0].node.Sign(ctx, keyquorum.SignRequest{KeyID: key.ID, Digest: digest,
				SignOptions: keyquorum.SignOptions{Signers: signers, Protocol: keyquorum.ProtocolGG20}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
