package tss

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// rawBatch builds a version-2 batch record by hand.
func rawBatch(keyID string, epoch uint64, encs ...[]byte) []byte {
	b := []byte(presigBatchMagic)
	b = append(b, presigBatchVer, byte(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(encs)))
	for i, e := range encs {
		id := bytes.Repeat([]byte{byte(i + 1)}, 32)
		b = append(b, id...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func TestParseBatch(t *testing.T) {
	good := rawBatch("00112233445566778899aabbccddeeff", 3, []byte("first"), []byte("second"))
	b, err := parseBatch(good)
	if err != nil {
		t.Fatal(err)
	}
	if b.keyID != "00112233445566778899aabbccddeeff" || b.epoch != 3 || len(b.entries) != 2 ||
		string(b.entries[1].enc) != "second" || b.entries[0].id != strings.Repeat("01", 32) {
		t.Fatalf("parsed %+v", b)
	}
	if _, err := parseBatch(append([]byte("KQPB\x01"), 0, 0, 0, 1)); !errors.Is(err, errOldBatch) {
		t.Fatalf("version 1: %v, want errOldBatch", err)
	}
	bad := map[string][]byte{
		"empty":         nil,
		"magic":         append([]byte("KQPX"), good[4:]...),
		"version 9":     append(append([]byte("KQPB"), 9), good[5:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(bytes.Clone(good), 0),
		"no entries":    rawBatch("k", 1),
		"short header":  []byte("KQPB\x02\x05ab"),
		"entry too big": append(rawBatch("k", 1, []byte("x"))[:len(rawBatch("k", 1, []byte("x")))-5], 0xff, 0xff, 0xff, 0xff, 'x'),
	}
	many := make([][]byte, maxBatch+1)
	for i := range many {
		many[i] = []byte{1}
	}
	bad["too many"] = rawBatch("k", 1, many...)
	for name, in := range bad {
		if _, err := parseBatch(in); err == nil || errors.Is(err, errOldBatch) {
			t.Errorf("%s: parsed without error (%v)", name, err)
		}
	}
}
