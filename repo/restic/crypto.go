package restic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/poly1305" //nolint:staticcheck // SA1019: restic's format is Poly1305-AES (design.rst), not a choice made here
	"golang.org/x/crypto/scrypt"
)

// Sizes of restic's authenticated encryption (doc/design.rst, "Keys, Encryption and MAC").
const (
	ivSize      = aes.BlockSize
	macSize     = poly1305.TagSize
	overhead    = ivSize + macSize
	encKeySize  = 32
	macKeySize  = 32 // 16 bytes AES-128 key k, then 16 bytes Poly1305 key r
	saltSize    = 64
	derivedSize = encKeySize + macKeySize
)

// errUnauthenticated is returned when a MAC does not match: wrong key, corrupted or forged data.
var errUnauthenticated = errors.New("ciphertext verification failed")

// key is a restic master key or a key derived from a password: AES-256 encryption key plus
// Poly1305-AES MAC key (k, r). It is immutable once built and safe for concurrent use.
type key struct {
	enc  [encKeySize]byte
	macK [16]byte
	macR [16]byte
}

// keyFromBytes splits 64 bytes as restic's KDF does: 32 encryption bytes, then k, then r.
func keyFromBytes(b []byte) *key {
	var k key

	copy(k.enc[:], b[:encKeySize])
	copy(k.macK[:], b[encKeySize:encKeySize+16])
	copy(k.macR[:], b[encKeySize+16:])

	return &k
}

// valid reports whether no part of the key is all zeros, as restic requires.
func (k *key) valid() bool {
	var zero [16]byte

	return k.enc != [encKeySize]byte{} && k.macK != zero && k.macR != zero
}

// open authenticates and decrypts an "IV | ciphertext | MAC" blob. A MAC mismatch returns an
// error wrapping errUnauthenticated and no plaintext.
func (k *key) open(blob []byte) ([]byte, error) {
	if len(blob) < overhead {
		return nil, fmt.Errorf("ciphertext of %d bytes is shorter than the %d bytes of IV and MAC", len(blob), overhead)
	}

	iv, ct, mac := blob[:ivSize], blob[ivSize:len(blob)-macSize], blob[len(blob)-macSize:]

	if subtle.ConstantTimeCompare(iv, make([]byte, ivSize)) == 1 {
		return nil, fmt.Errorf("all-zero IV: %w", errUnauthenticated)
	}

	if !k.verifyMAC(iv, ct, mac) {
		return nil, errUnauthenticated
	}

	block, err := aes.NewCipher(k.enc[:])
	if err != nil {
		return nil, fmt.Errorf("aes cipher: %w", err)
	}

	out := make([]byte, len(ct))
	cipher.NewCTR(block, iv).XORKeyStream(out, ct)

	return out, nil
}

// verifyMAC checks Poly1305-AES: the one-time key is r followed by AES_k(nonce).
func (k *key) verifyMAC(nonce, msg, mac []byte) bool {
	block, err := aes.NewCipher(k.macK[:])
	if err != nil {
		return false
	}

	var otk [32]byte
	copy(otk[:16], k.macR[:])
	block.Encrypt(otk[16:], nonce)

	var tag [macSize]byte
	copy(tag[:], mac)

	return poly1305.Verify(&tag, msg, &otk)
}

// keyFile is a file under keys/: scrypt parameters and the master key encrypted with the
// password-derived key.
type keyFile struct {
	KDF  string `json:"kdf"`
	N    int    `json:"N"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
	Data []byte `json:"data"`
}

// Bounds on scrypt parameters read from untrusted storage: a forged key file must not be able to
// make the service allocate gigabytes or spin for minutes. restic's calibration stays far below.
const (
	maxScryptN      = 1 << 20
	maxScryptMemory = 1 << 30 // 128*N*r*p bytes
)

// parseKeyFile decodes and sanity-checks a key file.
func parseKeyFile(b []byte) (keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return kf, fmt.Errorf("decode key file: %w", err)
	}

	switch {
	case kf.KDF != "scrypt":
		return kf, fmt.Errorf("key file: unsupported kdf %q", kf.KDF)
	case kf.N < 2 || kf.N&(kf.N-1) != 0 || kf.N > maxScryptN:
		return kf, fmt.Errorf("key file: scrypt N=%d must be a power of two in [2, %d]", kf.N, maxScryptN)
	case kf.R < 1 || kf.P < 1 || int64(128)*int64(kf.N)*int64(kf.R)*int64(kf.P) > maxScryptMemory:
		return kf, fmt.Errorf("key file: scrypt r=%d p=%d out of bounds for N=%d", kf.R, kf.P, kf.N)
	case len(kf.Salt) != saltSize:
		return kf, fmt.Errorf("key file: salt of %d bytes, want %d", len(kf.Salt), saltSize)
	}

	return kf, nil
}

// masterKeyJSON is the decrypted content of a key file's data field.
type masterKeyJSON struct {
	MAC struct {
		K []byte `json:"k"`
		R []byte `json:"r"`
	} `json:"mac"`
	Encrypt []byte `json:"encrypt"`
}

// openKeyFile derives the user key from password with scrypt (slow, memory-hungry: the caller
// bounds concurrency) and decrypts the master key. A wrong password yields errUnauthenticated.
func openKeyFile(kf keyFile, password []byte) (*key, error) {
	derived, err := scrypt.Key(password, kf.Salt, kf.N, kf.R, kf.P, derivedSize)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}

	plain, err := keyFromBytes(derived).open(kf.Data)
	if err != nil {
		return nil, fmt.Errorf("decrypt master key: %w", err)
	}

	var mk masterKeyJSON
	if err := json.Unmarshal(plain, &mk); err != nil {
		return nil, fmt.Errorf("decode master key: %w", err)
	}

	if len(mk.Encrypt) != encKeySize || len(mk.MAC.K) != 16 || len(mk.MAC.R) != 16 {
		return nil, errors.New("decode master key: wrong key sizes")
	}

	k := keyFromBytes(append(append(append([]byte{}, mk.Encrypt...), mk.MAC.K...), mk.MAC.R...))
	if !k.valid() {
		return nil, errors.New("decode master key: zero key")
	}

	return k, nil
}
