// Package wallet turns threshold ECDSA signatures into Bitcoin and Ethereum
// transactions and messages, and threshold BIP-340 Schnorr signatures into
// Bitcoin Taproot key-path spends.
//
// A custody user signs transactions, not digests. This package computes
// every digest itself from the payload, asks a [Signer] for a threshold
// signature of that digest, checks the signature against the derived public
// key and places it in the chain's format with the chain's own libraries
// (btcd's btcutil, psbt and txscript; go-ethereum's core/types, crypto and
// signer/core/apitypes). It knows nothing of networking, HSMs or the signing
// protocol, and does not import the signing engine.
//
// # Keys and paths
//
// A threshold key is the group public key plus the 32-byte chain code its
// parties agreed on; [ExtendedPublicKey] holds both. Child keys come from BIP-32
// non-hardened derivation (package [hd]): a path such as "m/0/7" gives the
// child public key and an additive tweak that the signers add to their
// shares. Hardened paths are refused with [hd.ErrHardened]: they need the whole
// private key, which no party holds.
//
// # Signer
//
// [Signer] is the seam to the signing engine:
//
//	type Signer interface {
//		PublicKey(ctx context.Context, path hd.Path) (*secp256k1.PublicKey, error)
//		SignDigest(ctx context.Context, digest [32]byte, path hd.Path) (*Signature, error)
//	}
//
// The engine runs the threshold protocol over the digest with the shares
// tweaked for path. Whatever it returns goes through [Signature.Canonical],
// which verifies it under PublicKey(ctx, path), normalizes S to the lower
// half and computes the recovery ID; a signature that does not verify never
// reaches a transaction ([ErrInvalidSignature]).
//
// [SchnorrSigner] is the seam to a threshold Schnorr engine, such as a FROST
// committee in the BIP-340 mode (package frost):
//
//	type SchnorrSigner interface {
//		InternalKey(ctx context.Context) ([]byte, error)
//		SignSchnorr(ctx context.Context, msg [32]byte, tweak *TaprootTweak) ([]byte, error)
//	}
//
// The wallet computes the BIP-341 sighash and hands it over with the public
// [TaprootTweak] (the output's merkle root, or none); the engine signs for
// the tweaked output key (a FROST coordinator adds the tweak term when it
// aggregates) and returns a 64-byte BIP-340 signature, which is verified
// with btcd's schnorr.Verify under the output key before it is used. No
// party, and not this package, needs the private key.
//
// # Addresses
//
// [BitcoinAddress] gives P2WPKH (bech32), P2SH-P2WPKH and P2PKH addresses ([AddressType]) for
// any btcd network (Network("mainnet"|"testnet"|"regtest"|"signet"));
// [TaprootAddress] gives the P2TR address (bech32m, BIP-350) of an x-only
// internal key with the BIP-341 key-path tweak, without a script tree
// (BIP-86) or for a given merkle root, and [TaprootOutputKey] the output key
// (btcd's txscript computes the tweak);
// [EthereumAddress] gives the address whose Hex method is the EIP-55 form.
//
// # Bitcoin
//
// [SignPSBT] signs a BIP-174 PSBT. It finds this key's inputs by their BIP-32
// derivation fields (root fingerprint of the group key, see [PSBTFingerprint])
// or by matching the spent script against the keys at [PSBTOptions.Paths],
// computes the BIP-143 sighash for P2WPKH and P2SH-P2WPKH and the legacy
// sighash for P2PKH (SIGHASH_ALL unless the PSBT asks for, and the caller
// allows, another type), signs, finalizes, runs btcd's script engine on each
// finalized input, and extracts the network transaction when every input is
// final. Inputs of other keys are left untouched. Taproot inputs that name
// this ECDSA key are refused with [ErrTaproot].
//
// [SignTaprootPSBT] does the same for P2TR key-path inputs of a Schnorr key:
// it finds them by their BIP-371 fields (taproot internal key, taproot
// BIP-32 derivation) or by the key's key-path-only P2TR script, tweaks with
// the input's taproot merkle root if it has one, computes the BIP-341
// sighash (SIGHASH_DEFAULT unless the PSBT asks for, and the caller allows,
// ALL, NONE, SINGLE or one of them with ANYONECANPAY) over the previous
// outputs of every input — an input without one is [ErrMissingUTXO] —,
// writes the taproot key-spend signature, finalizes and runs btcd's script
// engine with the taproot rules. Script-path spends are refused
// ([ErrTaprootScriptPath]). A PSBT with both ECDSA and Taproot inputs of
// this custody is signed in two passes, in either order: SignPSBT with the
// [Signer], SignTaprootPSBT with the SchnorrSigner on the packet the first
// pass returned; the second pass returns the complete transaction.
// [PlanTaprootPSBT] gives the same [Summary] as PlanPSBT (inputs, outputs,
// amounts, fee, change to the key's P2TR address), with each digest marked
// [SchemeBIP340] and carrying the output key, internal key and merkle root.
//
// # Ethereum
//
// [SignEthereumTx] signs legacy (with EIP-155 replay protection), EIP-2930 and
// EIP-1559 transactions and returns the raw signed transaction and its hash;
// go-ethereum's types.Sender must recover the key's address before it is
// returned. [SignPersonalMessage] signs EIP-191 personal messages and
// [SignTypedData] signs EIP-712 typed data; both return the 65-byte R || S || V
// form with V = 27 + recovery ID.
//
// # Summaries for approval
//
// [PlanPSBT], [PlanTaprootPSBT], [SummarizeEthereumTx], [SummarizePersonalMessage],
// [SummarizeTypedData] and [SummarizeDigest] describe a payload without
// signing it: inputs, outputs, amounts, fee and change for Bitcoin; chain ID,
// destination, value, fees and the called function (ERC-20 transfer,
// approve and transferFrom are decoded) for Ethereum; and every digest that
// will be signed, with its path and key. They need only the payload and
// public key data, so each site computes its own [Summary] and approves what
// it sees. Summary has a stable JSON form ([Summary.JSON]) and a text
// rendering ([Summary.Text]). Every Sign
// function returns the Summary of what it signed.
//
// # Limits
//
//   - ECDSA keys sign single-key P2WPKH, P2SH-P2WPKH and P2PKH only; Schnorr
//     keys sign Taproot key-path spends only (no script path); no P2WSH or
//     multisig scripts.
//   - Non-hardened derivation only, and none for Schnorr keys: a Taproot
//     input is signed by the internal key itself, not by a derived child.
//   - Segwit inputs that carry only a witness UTXO are signed over the
//     amount the PSBT states; set PSBTOptions.RequireFullPrevTx to insist on
//     the whole previous transaction (CVE-2020-14199).
//   - Ethereum blob (EIP-4844) and set-code (EIP-7702) transactions are
//     refused with [ErrUnsupportedTxType].
//   - Summaries decode only ERC-20 value-moving calls; other call data is
//     shown by selector and length. Token amounts are in the token's base
//     units (the summary does not know its decimals).
package wallet
