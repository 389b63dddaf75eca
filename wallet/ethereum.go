package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// SignedEthereumTx is a signed Ethereum transaction.
type SignedEthereumTx struct {
	// Tx is the signed transaction.
	Tx *types.Transaction
	// Raw is its canonical encoding (EIP-2718 envelope for typed
	// transactions, RLP for legacy), what eth_sendRawTransaction takes.
	Raw []byte
	// Hash is the transaction hash, Keccak-256 of Raw.
	Hash common.Hash
	// From is the sender address, recovered from the signature by
	// go-ethereum and checked to be the address of the signing key.
	From common.Address
	// Signature is the canonical signature of the signing hash.
	Signature Signature
	// Summary describes the transaction.
	Summary *Summary
}

// SignedMessage is a signed EIP-191 personal message or EIP-712 typed data.
type SignedMessage struct {
	// Digest is the signed hash.
	Digest [32]byte
	// Signature is the canonical signature of Digest.
	Signature Signature
	// Bytes65 is R || S || V with V = 27 + recovery ID, the encoding
	// eth_sign, personal_sign and eth_signTypedData return.
	Bytes65 [65]byte
	// From is the address of the signing key.
	From common.Address
	// Summary describes the message.
	Summary *Summary
}

// txTypeName names the transaction types this package signs.
func txTypeName(t uint8) (string, error) {
	switch t {
	case types.LegacyTxType:
		return "legacy", nil
	case types.AccessListTxType:
		return "eip2930", nil
	case types.DynamicFeeTxType:
		return "eip1559", nil
	}
	return "", fmt.Errorf("%w: type %d (legacy, EIP-2930 and EIP-1559 are supported)", ErrUnsupportedTxType, t)
}

// ParseEthereumTx decodes an unsigned transaction in its canonical encoding
// (types.Transaction.MarshalBinary of the unsigned transaction: an EIP-2718
// envelope, or RLP for legacy).
func ParseEthereumTx(raw []byte) (*types.Transaction, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTransaction, err)
	}
	return tx, nil
}

// ethTxSigner checks tx and chainID and returns go-ethereum's signer for
// them. chainID must be positive; a typed transaction must carry the same
// chain ID; a legacy transaction is signed with EIP-155 replay protection.
func ethTxSigner(tx *types.Transaction, chainID *big.Int) (types.Signer, string, error) {
	if tx == nil {
		return nil, "", fmt.Errorf("%w: no transaction", ErrInvalidTransaction)
	}
	typeName, err := txTypeName(tx.Type())
	if err != nil {
		return nil, "", err
	}
	if chainID == nil || chainID.Sign() <= 0 {
		return nil, "", fmt.Errorf("%w: a positive chain ID is required (unprotected pre-EIP-155 signatures are refused)", ErrChainID)
	}
	if tx.Type() != types.LegacyTxType && tx.ChainId().Cmp(chainID) != 0 {
		return nil, "", fmt.Errorf("%w: transaction is for chain %s, signing requested for chain %s", ErrChainID, tx.ChainId(), chainID)
	}
	if _, r, s := tx.RawSignatureValues(); (r != nil && r.Sign() != 0) || (s != nil && s.Sign() != 0) {
		return nil, "", fmt.Errorf("%w: transaction is already signed", ErrInvalidTransaction)
	}
	return types.LatestSignerForChainID(chainID), typeName, nil
}

// EthereumTxDigest returns the hash a key signs for tx on chain chainID:
// the EIP-155 hash for a legacy transaction, the EIP-2718 typed signing hash
// for EIP-2930 and EIP-1559 transactions (computed by go-ethereum).
func EthereumTxDigest(tx *types.Transaction, chainID *big.Int) ([32]byte, error) {
	signer, _, err := ethTxSigner(tx, chainID)
	if err != nil {
		return [32]byte{}, err
	}
	return signer.Hash(tx), nil
}

// SummarizeEthereumTx describes tx as the key at path of keys would sign it
// on chain chainID.
func SummarizeEthereumTx(ctx context.Context, keys KeySource, path hd.Path, tx *types.Transaction, chainID *big.Int) (*Summary, error) {
	signer, typeName, err := ethTxSigner(tx, chainID)
	if err != nil {
		return nil, err
	}
	pub, err := signerKey(ctx, keys, path)
	if err != nil {
		return nil, err
	}
	digest := signer.Hash(tx)
	es := &EthereumSummary{
		TxType:            typeName,
		ChainID:           chainID.String(),
		From:              EthereumAddress(pub).Hex(),
		Nonce:             tx.Nonce(),
		ContractCreation:  tx.To() == nil,
		Value:             newWei(tx.Value()),
		GasLimit:          tx.Gas(),
		DataLength:        len(tx.Data()),
		AccessListEntries: len(tx.AccessList()),
	}
	if to := tx.To(); to != nil {
		es.To = to.Hex()
	}
	priceCap := tx.GasPrice() // for EIP-1559 go-ethereum returns the fee cap
	if tx.Type() == types.DynamicFeeTxType {
		es.MaxFeePerGas, es.MaxPriorityFee = newWeiPtr(tx.GasFeeCap()), newWeiPtr(tx.GasTipCap())
		priceCap = tx.GasFeeCap()
	} else {
		es.GasPrice = newWeiPtr(tx.GasPrice())
	}
	es.MaxFee = newWei(new(big.Int).Mul(priceCap, new(big.Int).SetUint64(tx.Gas())))

	s := &Summary{Version: SummaryVersion, Kind: KindEthereumTransaction, Ethereum: es}
	if data := tx.Data(); len(data) >= 4 && tx.To() != nil {
		es.Selector = append(HexBytes{}, data[:4]...)
		call, warn := decodeKnownCall(data)
		es.Call = call
		s.Warnings = append(s.Warnings, warn...)
	}
	s.Digests = []DigestToSign{{Path: append(hd.Path{}, path...), PublicKey: pub.SerializeCompressed(), Digest: digest[:]}}
	return s, nil
}

// SignEthereumTx signs tx on chain chainID with the key at path.
//
// Legacy transactions get EIP-155 replay protection; EIP-2930 and EIP-1559
// transactions must carry chainID themselves ([ErrChainID]). Other types fail
// with [ErrUnsupportedTxType]. The signature is checked against the derived
// key, and go-ethereum's types.Sender must recover the key's address from
// the signed transaction.
func SignEthereumTx(ctx context.Context, s Signer, path hd.Path, tx *types.Transaction, chainID *big.Int) (*SignedEthereumTx, error) {
	if s == nil {
		return nil, fmt.Errorf("wallet: SignEthereumTx needs a signer")
	}
	summary, err := SummarizeEthereumTx(ctx, s, path, tx, chainID)
	if err != nil {
		return nil, err
	}
	ethSigner, _, err := ethTxSigner(tx, chainID)
	if err != nil {
		return nil, err
	}
	pub, err := signerKey(ctx, s, path)
	if err != nil {
		return nil, err
	}
	digest := ethSigner.Hash(tx)
	sig, err := signChecked(ctx, s, digest, path, pub)
	if err != nil {
		return nil, err
	}
	if sig.RecoveryID > 1 {
		return nil, fmt.Errorf("%w: recovery ID %d cannot be expressed in an Ethereum signature; sign again", ErrInvalidSignature, sig.RecoveryID)
	}
	compact := sig.Compact65()
	signed, err := tx.WithSignature(ethSigner, compact[:])
	if err != nil {
		return nil, fmt.Errorf("%w: attach signature: %v", ErrInvalidTransaction, err)
	}
	want := EthereumAddress(pub)
	from, err := types.Sender(ethSigner, signed)
	if err != nil || from != want {
		return nil, fmt.Errorf("%w: go-ethereum recovers sender %s (err %v), want %s", ErrInvalidSignature, from.Hex(), err, want.Hex())
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: encode signed transaction: %v", ErrInvalidTransaction, err)
	}
	return &SignedEthereumTx{Tx: signed, Raw: raw, Hash: signed.Hash(), From: from, Signature: sig, Summary: summary}, nil
}

// PersonalMessageDigest returns the EIP-191 version 0x45 hash of msg:
// Keccak-256("\x19Ethereum Signed Message:\n" || len(msg) || msg), as
// go-ethereum's accounts.TextHash computes it.
func PersonalMessageDigest(msg []byte) [32]byte {
	return [32]byte(accounts.TextHash(msg))
}

// SummarizePersonalMessage describes msg as the key at path would sign it
// with [SignPersonalMessage].
func SummarizePersonalMessage(ctx context.Context, keys KeySource, path hd.Path, msg []byte) (*Summary, error) {
	pub, err := signerKey(ctx, keys, path)
	if err != nil {
		return nil, err
	}
	digest := PersonalMessageDigest(msg)
	ms := &MessageSummary{Standard: "EIP-191", From: EthereumAddress(pub).Hex(), Hex: append(HexBytes{}, msg...)}
	if isPrintable(msg) {
		ms.Text = string(msg)
	}
	return &Summary{
		Version: SummaryVersion, Kind: KindEthereumPersonalMessage, Message: ms,
		Digests: []DigestToSign{{Path: append(hd.Path{}, path...), PublicKey: pub.SerializeCompressed(), Digest: digest[:]}},
	}, nil
}

// SignPersonalMessage signs msg as an EIP-191 personal message (eth_sign,
// personal_sign) with the key at path.
func SignPersonalMessage(ctx context.Context, s Signer, path hd.Path, msg []byte) (*SignedMessage, error) {
	if s == nil {
		return nil, fmt.Errorf("wallet: SignPersonalMessage needs a signer")
	}
	summary, err := SummarizePersonalMessage(ctx, s, path, msg)
	if err != nil {
		return nil, err
	}
	return signMessage(ctx, s, path, PersonalMessageDigest(msg), summary)
}

// ParseTypedData decodes EIP-712 typed data in the JSON form of
// eth_signTypedData_v4.
func ParseTypedData(raw []byte) (apitypes.TypedData, error) {
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		return apitypes.TypedData{}, fmt.Errorf("%w: %v", ErrTypedData, err)
	}
	return td, nil
}

// TypedDataDigest returns the EIP-712 hash of td:
// Keccak-256(0x19 0x01 || domainSeparator || hashStruct(message)), as
// go-ethereum's apitypes.TypedDataAndHash computes it.
func TypedDataDigest(td apitypes.TypedData) ([32]byte, error) {
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %v", ErrTypedData, err)
	}
	if len(h) != 32 {
		return [32]byte{}, fmt.Errorf("%w: hash has %d bytes", ErrTypedData, len(h))
	}
	return [32]byte(h), nil
}

// SummarizeTypedData describes td as the key at path would sign it with
// [SignTypedData].
func SummarizeTypedData(ctx context.Context, keys KeySource, path hd.Path, td apitypes.TypedData) (*Summary, error) {
	digest, err := TypedDataDigest(td)
	if err != nil {
		return nil, err
	}
	pub, err := signerKey(ctx, keys, path)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(td.Message)
	if err != nil {
		return nil, fmt.Errorf("%w: message: %v", ErrTypedData, err)
	}
	dom := &TypedDomain{Name: td.Domain.Name, Version: td.Domain.Version, VerifyingContract: td.Domain.VerifyingContract, Salt: td.Domain.Salt}
	if td.Domain.ChainId != nil {
		dom.ChainID = (*big.Int)(td.Domain.ChainId).String()
	}
	ms := &MessageSummary{
		Standard: "EIP-712", From: EthereumAddress(pub).Hex(),
		Domain: dom, PrimaryType: td.PrimaryType, Data: data,
	}
	return &Summary{
		Version: SummaryVersion, Kind: KindEthereumTypedData, Message: ms,
		Digests: []DigestToSign{{Path: append(hd.Path{}, path...), PublicKey: pub.SerializeCompressed(), Digest: digest[:]}},
	}, nil
}

// SignTypedData signs EIP-712 typed data (eth_signTypedData_v4) with the
// key at path.
func SignTypedData(ctx context.Context, s Signer, path hd.Path, td apitypes.TypedData) (*SignedMessage, error) {
	if s == nil {
		return nil, fmt.Errorf("wallet: SignTypedData needs a signer")
	}
	summary, err := SummarizeTypedData(ctx, s, path, td)
	if err != nil {
		return nil, err
	}
	digest, err := TypedDataDigest(td)
	if err != nil {
		return nil, err
	}
	return signMessage(ctx, s, path, digest, summary)
}

// signMessage signs a message digest and checks that go-ethereum's
// crypto.SigToPub recovers the signing key from the 65-byte form.
func signMessage(ctx context.Context, s Signer, path hd.Path, digest [32]byte, summary *Summary) (*SignedMessage, error) {
	pub, err := signerKey(ctx, s, path)
	if err != nil {
		return nil, err
	}
	sig, err := signChecked(ctx, s, digest, path, pub)
	if err != nil {
		return nil, err
	}
	if sig.RecoveryID > 1 {
		return nil, fmt.Errorf("%w: recovery ID %d cannot be expressed in an Ethereum signature; sign again", ErrInvalidSignature, sig.RecoveryID)
	}
	compact := sig.Compact65()
	recovered, err := crypto.SigToPub(digest[:], compact[:])
	if err != nil || !bytes.Equal(crypto.FromECDSAPub(recovered), pub.SerializeUncompressed()) {
		return nil, fmt.Errorf("%w: go-ethereum does not recover the signing key (err %v)", ErrInvalidSignature, err)
	}
	out := &SignedMessage{Digest: digest, Signature: sig, Bytes65: compact, From: EthereumAddress(pub), Summary: summary}
	out.Bytes65[64] += 27
	return out, nil
}

// isPrintable reports whether msg is UTF-8 text without control characters
// other than newline and tab.
func isPrintable(msg []byte) bool {
	if len(msg) == 0 || !utf8.Valid(msg) {
		return false
	}
	for _, r := range string(msg) {
		if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
