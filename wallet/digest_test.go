package wallet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyquorum/keyquorum/wallet"
)

func TestSummarizeDigest_ShowsDigestKeyAndWarning(t *testing.T) {
	k := newLocalKey(t, "", nil)
	path := mustPath(t, "m/3/1")
	digest := [32]byte{1, 2, 3}
	s, err := wallet.SummarizeDigest(context.Background(), k, path, digest)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.PublicKey(context.Background(), path)
	if s.Kind != wallet.KindRawDigest || len(s.Digests) != 1 || !bytes.Equal(s.Digests[0].Digest, digest[:]) ||
		!s.Digests[0].Path.Equal(path) || !bytes.Equal(s.Digests[0].PublicKey, pub.SerializeCompressed()) {
		t.Fatalf("summary %+v", s)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Text(), "Raw digest") || !strings.Contains(s.Text(), "WARNING") {
		t.Fatalf("text:\n%s", s.Text())
	}
	raw, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back wallet.Summary
	if err := json.Unmarshal(raw, &back); err != nil || back.Kind != wallet.KindRawDigest {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
}

func TestSummarizeDigest_RefusesHardenedPath(t *testing.T) {
	k := newLocalKey(t, "", nil)
	if _, err := wallet.SummarizeDigest(context.Background(), k, []uint32{1 << 31}, [32]byte{}); err == nil {
		t.Fatal("hardened path accepted")
	}
}
