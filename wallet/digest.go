package wallet

import (
	"context"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// SummarizeDigest describes a bare 32-byte digest as the key at path would
// sign it. The summary can show only the digest, the path and the key:
// nobody can tell what a raw digest commits to, which is why policies treat
// it apart (Kind KindRawDigest).
func SummarizeDigest(ctx context.Context, keys KeySource, path hd.Path, digest [32]byte) (*Summary, error) {
	pub, err := signerKey(ctx, keys, path)
	if err != nil {
		return nil, err
	}
	return &Summary{
		Version: SummaryVersion, Kind: KindRawDigest,
		Digests:  []DigestToSign{{Path: append(hd.Path{}, path...), PublicKey: pub.SerializeCompressed(), Digest: append(HexBytes{}, digest[:]...)}},
		Warnings: []string{"a raw digest is signed blind: nobody can check what it commits to"},
	}, nil
}
