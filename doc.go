// Package keyquorum is a library for threshold ECDSA custody.
//
// Each party's key share is sealed by that party's own HSM over PKCS#11
// (package hsmshare). Parties reach each other over libp2p (package
// transport) and run threshold key generation and signing (package tss), so
// two or more separated HSMs must cooperate before any signature exists.
// Package wallet turns threshold signatures into Bitcoin and Ethereum
// transactions.
//
// A user embeds these packages in a signing service, one process per site,
// each site with its own HSM. See the README for the security model.
package keyquorum
