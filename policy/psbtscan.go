package policy

import (
	"encoding/binary"
	"fmt"
)

// scanPSBT walks the key-value framing of a binary PSBT (BIP-174) and the
// transactions inside it before btcd's parser sees them, and refuses any
// length or count that the remaining bytes cannot hold. btcd allocates
// what a length prefix claims before reading (up to 4 MB per value, and
// a slice of every claimed input or output), so without this walk a few
// hostile bytes would make a site allocate tens of megabytes. It also
// applies MaxUnsignedTxSize, MaxPSBTInputs and MaxPSBTOutputs.
//
// The walk checks framing only; btcd's parser and wallet.PlanPSBT check
// the content.
func scanPSBT(b []byte) error {
	s := scanner{b: b}
	if string(s.take(5)) != "psbt\xff" {
		return fmt.Errorf("%w: PSBT does not start with the magic psbt\\xff", ErrIntent)
	}
	nIn, nOut := -1, -1
	err := s.kvMap(func(key, val []byte) error {
		if len(key) != 1 || key[0] != 0x00 {
			return nil
		}
		if len(val) > MaxUnsignedTxSize {
			return fmt.Errorf("%w: unsigned transaction of %d bytes, at most %d", ErrIntentTooLarge, len(val), MaxUnsignedTxSize)
		}
		var err error
		nIn, nOut, err = scanTx(val, false)
		return err
	})
	if err != nil {
		return err
	}
	if nIn < 0 {
		return fmt.Errorf("%w: PSBT has no unsigned transaction", ErrIntent)
	}
	if nIn > MaxPSBTInputs || nOut > MaxPSBTOutputs {
		return fmt.Errorf("%w: PSBT with %d inputs and %d outputs, at most %d and %d", ErrIntentTooLarge, nIn, nOut, MaxPSBTInputs, MaxPSBTOutputs)
	}
	for i := 0; i < nIn; i++ {
		err := s.kvMap(func(key, val []byte) error {
			if len(key) != 1 || key[0] != 0x00 { // PSBT_IN_NON_WITNESS_UTXO
				return nil
			}
			_, _, err := scanTx(val, true)
			return err
		})
		if err != nil {
			return fmt.Errorf("PSBT input %d: %w", i, err)
		}
	}
	for i := 0; i < nOut; i++ {
		if err := s.kvMap(func(_, _ []byte) error { return nil }); err != nil {
			return fmt.Errorf("PSBT output %d: %w", i, err)
		}
	}
	if s.err != nil {
		return fmt.Errorf("%w: PSBT framing is truncated", ErrIntent)
	}
	if len(s.b) != s.off {
		return fmt.Errorf("%w: %d bytes after the last PSBT map", ErrIntent, len(s.b)-s.off)
	}
	return nil
}

// scanTx walks a Bitcoin transaction serialization and returns its input
// and output counts. Witness data is accepted only when withWitness is set
// (a PSBT's unsigned transaction has none).
func scanTx(b []byte, withWitness bool) (nIn, nOut int, err error) {
	s := scanner{b: b}
	s.take(4) // version
	segwit := withWitness && len(b) >= 6 && b[4] == 0x00 && b[5] == 0x01
	if segwit {
		s.take(2)
	}
	in := s.count(41) // outpoint 36, script length 1, sequence 4
	for i := 0; i < in && s.err == nil; i++ {
		s.take(36)
		s.take(s.count(1))
		s.take(4)
	}
	out := s.count(9) // value 8, script length 1
	for i := 0; i < out && s.err == nil; i++ {
		s.take(8)
		s.take(s.count(1))
	}
	if segwit {
		for i := 0; i < in && s.err == nil; i++ {
			items := s.count(1)
			for j := 0; j < items && s.err == nil; j++ {
				s.take(s.count(1))
			}
		}
	}
	s.take(4) // lock time
	if s.err != nil || s.off != len(b) {
		return 0, 0, fmt.Errorf("%w: malformed transaction in PSBT", ErrIntent)
	}
	if in == 0 && !withWitness {
		return 0, 0, fmt.Errorf("%w: PSBT transaction has no inputs", ErrIntent)
	}
	return in, out, nil
}

// scanner reads Bitcoin CompactSize-framed data; after the first failure
// every read returns nothing and err stays set.
type scanner struct {
	b   []byte
	off int
	err error
}

func (s *scanner) take(n int) []byte {
	if s.err != nil || n < 0 || n > len(s.b)-s.off {
		s.err = ErrIntent
		return nil
	}
	out := s.b[s.off : s.off+n]
	s.off += n
	return out
}

// varint reads a CompactSize integer.
func (s *scanner) varint() uint64 {
	first := s.take(1)
	if first == nil {
		return 0
	}
	switch first[0] {
	case 0xfd:
		if b := s.take(2); b != nil {
			return uint64(binary.LittleEndian.Uint16(b))
		}
	case 0xfe:
		if b := s.take(4); b != nil {
			return uint64(binary.LittleEndian.Uint32(b))
		}
	case 0xff:
		if b := s.take(8); b != nil {
			return binary.LittleEndian.Uint64(b)
		}
	default:
		return uint64(first[0])
	}
	return 0
}

// count reads a CompactSize count of items of at least minSize bytes each
// and fails unless that many fit in the remaining bytes.
func (s *scanner) count(minSize int) int {
	n := s.varint()
	if s.err != nil {
		return 0
	}
	if n > uint64(len(s.b)-s.off)/uint64(minSize) {
		s.err = ErrIntent
		return 0
	}
	return int(n)
}

// kvMap reads one PSBT map (key-value pairs up to a zero-length key) and
// calls f on each pair.
func (s *scanner) kvMap(f func(key, val []byte) error) error {
	for {
		kl := s.count(1)
		if s.err != nil {
			return fmt.Errorf("%w: PSBT framing is truncated", ErrIntent)
		}
		if kl == 0 {
			return nil
		}
		key := s.take(kl)
		val := s.take(s.count(1))
		if s.err != nil {
			return fmt.Errorf("%w: PSBT framing is truncated", ErrIntent)
		}
		if err := f(key, val); err != nil {
			return err
		}
	}
}
