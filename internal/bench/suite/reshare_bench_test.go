package suite

import (
	"encoding/json"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"

	"github.com/keyquorum/keyquorum/internal/bench/internal/party"
	"github.com/keyquorum/keyquorum/internal/rawtss"
)

// reshareKey returns a 2-of-3 key of sites 0, 1, 2 kept for resharing (so
// resharing never touches the main key's presignatures), generating it
// when the lab has none.
func reshareKey(b *testing.B) string {
	b.Helper()
	id, _ := labKey(b, "reshare-key")
	return id
}

// cloneKeys returns a deep copy of tss-lib save data.
func cloneKeys(b *testing.B, keys []*keygen.LocalPartySaveData) []*keygen.LocalPartySaveData {
	b.Helper()
	data, err := json.Marshal(keys)
	if err != nil {
		b.Fatal(err)
	}
	var out []*keygen.LocalPartySaveData
	if err := json.Unmarshal(data, &out); err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkReshare measures moving a 2-of-3 key to a fresh 2-of-3
// committee of the same three sites (new shares, same public key).
// tss-lib's operation is its resharing protocol alone; keyquorum's is its
// two-phase reshare: tss-lib resharing, then a GG18 signature by the new
// committee that proves the new shares work, then the commit that makes
// them active and erases the old ones.
func BenchmarkReshare(b *testing.B) {
	b.Run("size=2of3/impl=tsslib", func(b *testing.B) {
		keys := rawKey2of3(b)
		newPre := rawPre(b, 3, 3)
		for b.Loop() {
			// tss-lib's old committee zeroes its share in place at the
			// end of a reshare, so each run gets its own copy.
			b.StopTimer()
			old := cloneKeys(b, keys)
			b.StartTimer()
			if _, err := rawtss.Reshare(ctx, old, 1, newPre, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, mode := range modes {
		b.Run("size=2of3/impl="+string(mode), func(b *testing.B) {
			key := reshareKey(b)
			d := deploy(b, mode, trio)
			mem := memory(b, d)
			stop := profile(b, d, 0)
			i := 0
			for b.Loop() {
				b.StopTimer()
				feed(b, d, trio, 3+3*(i%2))
				b.StartTimer()
				do(b, d, party.Request{Op: party.OpReshare, Party: 0, KeyID: key, Parties: trio, NewParties: trio, Threshold: 2})
				i++
			}
			stop()
			mem()
		})
	}
}
