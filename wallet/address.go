package wallet

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// AddressType is a kind of Bitcoin single-key output script.
type AddressType string

// The Bitcoin output types this package creates addresses for and signs.
// All use the compressed public key.
const (
	// P2WPKH is native segwit v0 pay-to-witness-pubkey-hash (BIP-141),
	// bech32 address (BIP-173): bc1q..., tb1q..., bcrt1q....
	P2WPKH AddressType = "p2wpkh"
	// P2SHP2WPKH is P2WPKH nested in pay-to-script-hash (BIP-141 §P2WPKH
	// nested in BIP16 P2SH): 3..., 2....
	P2SHP2WPKH AddressType = "p2sh-p2wpkh"
	// P2PKH is legacy pay-to-pubkey-hash: 1..., m... or n....
	P2PKH AddressType = "p2pkh"
)

// AddressTypes lists the supported address types, in the order scripts are
// matched.
var AddressTypes = []AddressType{P2WPKH, P2SHP2WPKH, P2PKH}

// Network returns the btcd parameters for a Bitcoin network name:
// "mainnet", "testnet" (testnet3), "regtest" or "signet".
func Network(name string) (*chaincfg.Params, error) {
	switch name {
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	}
	return nil, fmt.Errorf("%w: network %q (use mainnet, testnet, regtest or signet)", ErrAddressType, name)
}

// BitcoinAddress returns the address of type typ for pub on network net.
func BitcoinAddress(pub *secp256k1.PublicKey, typ AddressType, net *chaincfg.Params) (btcutil.Address, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: no public key", ErrAddressType)
	}
	if net == nil {
		return nil, fmt.Errorf("%w: no network parameters", ErrAddressType)
	}
	pkHash := btcutil.Hash160(pub.SerializeCompressed())
	var (
		addr btcutil.Address
		err  error
	)
	switch typ {
	case P2WPKH:
		addr, err = btcutil.NewAddressWitnessPubKeyHash(pkHash, net)
	case P2SHP2WPKH:
		addr, err = btcutil.NewAddressScriptHash(witnessProgram(pkHash), net)
	case P2PKH:
		addr, err = btcutil.NewAddressPubKeyHash(pkHash, net)
	default:
		return nil, fmt.Errorf("%w: address type %q (use p2wpkh, p2sh-p2wpkh or p2pkh)", ErrAddressType, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %s address on %s: %w", typ, net.Name, err)
	}
	return addr, nil
}

// witnessProgram returns the P2WPKH output script OP_0 <20-byte hash>, which
// is also the redeem script of P2SH-P2WPKH.
func witnessProgram(pkHash []byte) []byte {
	return append([]byte{txscript.OP_0, txscript.OP_DATA_20}, pkHash...)
}

// keyScripts holds the output scripts of one public key.
type keyScripts struct {
	p2wpkh, p2shP2wpkh, p2pkh []byte
	redeem                    []byte // redeem script of P2SH-P2WPKH
}

func scriptsFor(pub *secp256k1.PublicKey) keyScripts {
	pkHash := btcutil.Hash160(pub.SerializeCompressed())
	prog := witnessProgram(pkHash)
	p2sh := append([]byte{txscript.OP_HASH160, txscript.OP_DATA_20}, btcutil.Hash160(prog)...)
	p2sh = append(p2sh, txscript.OP_EQUAL)
	p2pkh := append([]byte{txscript.OP_DUP, txscript.OP_HASH160, txscript.OP_DATA_20}, pkHash...)
	p2pkh = append(p2pkh, txscript.OP_EQUALVERIFY, txscript.OP_CHECKSIG)
	return keyScripts{p2wpkh: prog, p2shP2wpkh: p2sh, p2pkh: p2pkh, redeem: prog}
}

// match returns the address type whose output script is pkScript.
func (k keyScripts) match(pkScript []byte) (AddressType, bool) {
	switch string(pkScript) {
	case string(k.p2wpkh):
		return P2WPKH, true
	case string(k.p2shP2wpkh):
		return P2SHP2WPKH, true
	case string(k.p2pkh):
		return P2PKH, true
	}
	return "", false
}

// EthereumAddress returns the Ethereum address of pub: the last 20 bytes of
// Keccak-256 of the uncompressed key without its 0x04 prefix. Its Hex method
// gives the EIP-55 mixed-case checksum form.
func EthereumAddress(pub *secp256k1.PublicKey) common.Address {
	return common.BytesToAddress(crypto.Keccak256(pub.SerializeUncompressed()[1:])[12:])
}
