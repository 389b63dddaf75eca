package tss

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/bnb-chain/tss-lib/v2/crypto/paillier"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
)

// TestKeyShare_FormattingNeverPrintsSecrets formats a share whose secret
// fields hold recognisable values with every fmt verb that prints structs
// and through slog's JSON handler, and checks that none of the values
// appears, in decimal or in hex, while the public description does.
func TestKeyShare_FormattingNeverPrintsSecrets(t *testing.T) {
	secret := func(i int64) *big.Int {
		// Long and distinctive, so a match cannot be an accident.
		v, _ := new(big.Int).SetString("9f3c5a7e1b2d4f6081a3c5e7092b4d6f", 16)
		return v.Add(v, big.NewInt(i))
	}
	data := keygen.NewLocalPartySaveData(2)
	data.Xi = secret(1)
	data.LocalPreParams = keygen.LocalPreParams{
		PaillierSK: &paillier.PrivateKey{
			PublicKey: paillier.PublicKey{N: big.NewInt(77)},
			LambdaN:   secret(2),
			PhiN:      secret(3),
			P:         secret(4),
			Q:         secret(5),
		},
		Alpha: secret(6),
		Beta:  secret(7),
		P:     secret(8),
		Q:     secret(9),
	}
	share := &keyShare{
		Format:    shareFormat,
		KeyID:     "0123456789abcdef0123456789abcdef",
		Threshold: 2,
		Parties:   []PartyID{"site-a", "site-b"},
		ShareIDs:  []string{"1", "2"},
		Self:      "site-a",
		PublicKey: []byte{0x02, 0xaa, 0xbb},
		Epoch:     3,
		Data:      &data,
	}
	var secrets []string
	for i := int64(1); i <= 9; i++ {
		secrets = append(secrets, secret(i).String(), secret(i).Text(16))
	}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "share", share, "value", *share)
	outputs := map[string]string{
		"%v pointer":  fmt.Sprintf("%v", share),
		"%+v pointer": fmt.Sprintf("%+v", share),
		"%#v pointer": fmt.Sprintf("%#v", share),
		"%v value":    fmt.Sprintf("%v", *share),
		"%+v value":   fmt.Sprintf("%+v", *share),
		"%#v value":   fmt.Sprintf("%#v", *share),
		"%s value":    fmt.Sprintf("%s", *share),
		"slog JSON":   logged.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s prints a secret (%s…): %s", name, s[:8], out)
			}
		}
		if !strings.Contains(out, share.KeyID) || !strings.Contains(out, "redacted") {
			t.Errorf("%s does not describe the share by its key ID with its secrets redacted: %s", name, out)
		}
	}
}
