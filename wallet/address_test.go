package wallet_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyquorum/keyquorum/wallet"
)

func TestBitcoinAddress_Vectors(t *testing.T) {
	var file struct {
		Bitcoin []struct {
			PublicKey, Type, Network, Address string
		} `json:"bitcoin"`
		Ethereum []struct {
			PublicKey, Address string
		} `json:"ethereum"`
	}
	readVectors(t, "addresses.json", &file)
	for _, v := range file.Bitcoin {
		pub, err := secp256k1.ParsePubKey(mustHex(t, v.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		net, err := wallet.Network(v.Network)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := wallet.BitcoinAddress(pub, wallet.AddressType(v.Type), net)
		if err != nil {
			t.Fatalf("%s %s: %v", v.Type, v.Network, err)
		}
		if addr.EncodeAddress() != v.Address {
			t.Errorf("%s on %s: %s, want %s", v.Type, v.Network, addr.EncodeAddress(), v.Address)
		}
	}
	for _, v := range file.Ethereum {
		pub, _ := secp256k1.ParsePubKey(mustHex(t, v.PublicKey))
		if got := wallet.EthereumAddress(pub).Hex(); got != v.Address {
			t.Errorf("Ethereum address %s, want %s", got, v.Address)
		}
	}
}

// TestBitcoinAddress_DerivedKeysOnEveryNetwork checks that each address
// decodes with btcutil for its own network only and pays to the derived key.
func TestBitcoinAddress_DerivedKeysOnEveryNetwork(t *testing.T) {
	k := newLocalKey(t, "", nil)
	pub, err := k.PublicKey(context.Background(), mustPath(t, "m/0/7"))
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]map[wallet.AddressType][]string{
		"mainnet": {wallet.P2WPKH: {"bc1q"}, wallet.P2SHP2WPKH: {"3"}, wallet.P2PKH: {"1"}},
		"testnet": {wallet.P2WPKH: {"tb1q"}, wallet.P2SHP2WPKH: {"2"}, wallet.P2PKH: {"m", "n"}},
		"regtest": {wallet.P2WPKH: {"bcrt1q"}, wallet.P2SHP2WPKH: {"2"}, wallet.P2PKH: {"m", "n"}},
	}
	for netName, byType := range prefixes {
		net, _ := wallet.Network(netName)
		for typ, allowed := range byType {
			addr, err := wallet.BitcoinAddress(pub, typ, net)
			if err != nil {
				t.Fatal(err)
			}
			s := addr.EncodeAddress()
			ok := false
			for _, p := range allowed {
				ok = ok || strings.HasPrefix(s, p)
			}
			if !ok {
				t.Errorf("%s %s address %s does not start with any of %q", netName, typ, s, allowed)
			}
			dec, err := btcutil.DecodeAddress(s, net)
			if err != nil || !dec.IsForNet(net) {
				t.Errorf("%s %s address %s does not decode for its network: %v", netName, typ, s, err)
			}
		}
	}
	if got, want := wallet.EthereumAddress(pub), crypto.PubkeyToAddress(*pub.ToECDSA()); got != want {
		t.Fatalf("EthereumAddress %s, go-ethereum %s", got.Hex(), want.Hex())
	}
	if a := wallet.EthereumAddress(pub).Hex(); !common.IsHexAddress(a) || a != common.HexToAddress(strings.ToLower(a)).Hex() {
		t.Fatalf("address %s is not in EIP-55 form", a)
	}
}

func TestBitcoinAddress_Refusals(t *testing.T) {
	pub := newLocalKey(t, "", nil).priv.PubKey()
	net, _ := wallet.Network("regtest")
	if _, err := wallet.BitcoinAddress(pub, "p2tr", net); !errors.Is(err, wallet.ErrAddressType) {
		t.Fatalf("p2tr: err = %v, want ErrAddressType", err)
	}
	if _, err := wallet.BitcoinAddress(pub, wallet.P2WPKH, nil); !errors.Is(err, wallet.ErrAddressType) {
		t.Fatalf("nil network: err = %v, want ErrAddressType", err)
	}
	if _, err := wallet.BitcoinAddress(nil, wallet.P2WPKH, net); !errors.Is(err, wallet.ErrAddressType) {
		t.Fatalf("nil key: err = %v, want ErrAddressType", err)
	}
	if _, err := wallet.Network("litecoin"); !errors.Is(err, wallet.ErrAddressType) {
		t.Fatalf("unknown network: err = %v, want ErrAddressType", err)
	}
}

func TestFingerprint_MatchesBIP32(t *testing.T) {
	// BIP-32 test vector 1: master key fingerprint 3442193e.
	pub, _ := secp256k1.ParsePubKey(mustHex(t, "0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2"))
	if fp := wallet.Fingerprint(pub); fp != [4]byte{0x34, 0x42, 0x19, 0x3e} {
		t.Fatalf("fingerprint %x, want 3442193e", fp)
	}
	if wallet.PSBTFingerprint(pub) != 0x3e194234 {
		t.Fatalf("PSBT fingerprint %08x, want the bytes 34 42 19 3e read little-endian", wallet.PSBTFingerprint(pub))
	}
}
