package wallet

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these (or
// one of the hd package's) so callers can branch with errors.Is; the wrapping
// message says which input, transaction field or key was involved.
var (
	// ErrInvalidSignature means a signature does not verify under the public
	// key it is supposed to belong to, has R or S out of range, or does not
	// recover that key. The signer misbehaved or signed under another key or
	// path; nothing was added to the transaction.
	ErrInvalidSignature = errors.New("wallet: signature does not verify under the expected public key")

	// ErrSignerKey means the signer's public key for a path differs from the
	// key the payload names for that path (for example a PSBT BIP-32
	// derivation field). The signer is configured for another key.
	ErrSignerKey = errors.New("wallet: signer public key does not match the payload")

	// ErrTaproot means a PSBT asks an ECDSA key ([SignPSBT], [PlanPSBT]) to
	// sign a taproot (segwit v1) input. Taproot inputs need a BIP-340
	// Schnorr key: sign them with [SignTaprootPSBT] and a [SchnorrSigner].
	ErrTaproot = errors.New("wallet: an ECDSA key cannot sign taproot inputs (use SignTaprootPSBT with a Schnorr key)")

	// ErrTaprootScriptPath means a taproot input of this Schnorr key asks
	// for a script-path spend (leaf scripts, script-path signatures, or the
	// key named only for script leaves). Only key-path spends are signed.
	ErrTaprootScriptPath = errors.New("wallet: taproot script-path spends are not supported (key path only)")

	// ErrTaprootKey means a Taproot internal key is not a valid 32-byte
	// x-only key, or a merkle root is not 32 bytes.
	ErrTaprootKey = errors.New("wallet: invalid Taproot internal key or merkle root")

	// ErrUnsupportedScript means an input that belongs to this key is locked
	// by a script other than P2WPKH, P2SH-P2WPKH or P2PKH.
	ErrUnsupportedScript = errors.New("wallet: unsupported script for an input of this key")

	// ErrSighashType means an input requests a sighash type that the caller
	// did not allow, or one that is invalid.
	ErrSighashType = errors.New("wallet: sighash type not allowed")

	// ErrMissingUTXO means an input of this key lacks the previous output it
	// spends (PSBT witness or non-witness UTXO), so its sighash or amount
	// cannot be computed.
	ErrMissingUTXO = errors.New("wallet: previous output of an input is missing")

	// ErrUTXOMismatch means the previous-output data in a PSBT contradicts
	// itself: a non-witness UTXO whose transaction ID is not the one spent,
	// or a witness UTXO that differs from the output in the full transaction.
	ErrUTXOMismatch = errors.New("wallet: previous output data is inconsistent")

	// ErrNothingToSign means no input of a PSBT belongs to this key.
	ErrNothingToSign = errors.New("wallet: no input of the PSBT belongs to this key")

	// ErrAlreadySigned means an input already carries a signature or final
	// script for this key. Pass the unsigned PSBT instead.
	ErrAlreadySigned = errors.New("wallet: input is already signed")

	// ErrInvalidPSBT means the PSBT cannot be parsed or is structurally
	// invalid.
	ErrInvalidPSBT = errors.New("wallet: invalid PSBT")

	// ErrScriptCheck means btcd's script engine rejected a finalized input.
	// It indicates a bug or a malformed PSBT; the result is not returned.
	ErrScriptCheck = errors.New("wallet: finalized input fails script verification")

	// ErrChainID means an Ethereum payload has no chain ID (a replayable
	// pre-EIP-155 signature) or names a chain ID other than the one the
	// caller asked to sign for.
	ErrChainID = errors.New("wallet: missing or mismatched chain ID")

	// ErrUnsupportedTxType means an Ethereum transaction type other than
	// legacy (EIP-155), access-list (EIP-2930) or dynamic-fee (EIP-1559).
	ErrUnsupportedTxType = errors.New("wallet: unsupported Ethereum transaction type")

	// ErrInvalidTransaction means an Ethereum transaction cannot be decoded
	// or is already signed.
	ErrInvalidTransaction = errors.New("wallet: invalid Ethereum transaction")

	// ErrTypedData means EIP-712 typed data cannot be hashed (unknown types,
	// values that do not match their declared type, ...).
	ErrTypedData = errors.New("wallet: invalid EIP-712 typed data")

	// ErrAddressType means an unknown Bitcoin address type or network.
	ErrAddressType = errors.New("wallet: unknown address type or network")
)
