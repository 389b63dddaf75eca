package tss_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/keyquorum/keyquorum/tss"
)

// BenchmarkSchnorr measures threshold Schnorr over the engine (sessions,
// echo broadcast, sealed storage on SoftHSM2 tokens, in-memory network):
// the DKG of a 2-of-3 and a 3-of-5 key, and one two-round signature by 2
// of 3, for each scheme. Compare with BenchmarkSignOnline2of3 (GG20, one
// round trip from a presignature) and BenchmarkSign2of3 (GG18).
//
//	go test -run '^$' -bench Schnorr -benchtime 20x ./tss/
func BenchmarkSchnorr(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, scheme := range []tss.Scheme{tss.SchemeBIP340, tss.SchemeEd25519} {
		for _, size := range []struct{ t, n int }{{2, 3}, {3, 5}} {
			b.Run(fmt.Sprintf("keygen-%dof%d/scheme=%s", size.t, size.n, scheme), func(b *testing.B) {
				c := newCluster(b, size.n, nil)
				b.ResetTimer()
				for b.Loop() {
					if _, err := c.Parties[0].Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: scheme, Parties: c.IDs(), Threshold: size.t}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("sign-2of3/scheme=%s", scheme), func(b *testing.B) {
			c := newCluster(b, 3, nil)
			info, err := c.Parties[0].Engine.SchnorrKeygen(ctx, tss.SchnorrKeygenRequest{Scheme: scheme, Parties: c.IDs(), Threshold: 2})
			if err != nil {
				b.Fatal(err)
			}
			signers := c.IDs()[:2]
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				msg := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
				if _, err := c.Party(signers[0]).Engine.SchnorrSign(ctx, tss.SchnorrSignRequest{KeyID: info.ID, Message: msg[:], Signers: signers, Taproot: scheme == tss.SchemeBIP340}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
