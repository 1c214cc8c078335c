package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// PublicKey is a key that verifies tokens of exactly one algorithm.
type PublicKey struct {
	// ID is the kid that tokens signed with the key carry; empty means
	// the key is tried for every token of its algorithm.
	ID string
	// Alg is RS256, ES256 or EdDSA, and must fit Key.
	Alg string
	// Key is an *rsa.PublicKey, an *ecdsa.PublicKey on P-256 or an
	// ed25519.PublicKey.
	Key crypto.PublicKey
}

// asymmetricAlgs are the public-key algorithms presenced accepts. Each key
// type has exactly one, so the algorithm follows from the key and a token
// can never choose it.
var asymmetricAlgs = []string{
	jwt.SigningMethodRS256.Alg(),
	jwt.SigningMethodES256.Alg(),
	jwt.SigningMethodEdDSA.Alg(),
}

// minRSABits is the smallest RSA modulus accepted (RFC 7518, section 3.3).
const minRSABits = 2048

// algFor returns the one algorithm a key may verify.
func algFor(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits is shorter than %d", k.N.BitLen(), minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("Ed25519 key of %d bytes", len(k))
		}
		return jwt.SigningMethodEdDSA.Alg(), nil
	default:
		return "", fmt.Errorf("unsupported key type %T: use RSA, EC P-256 or Ed25519", key)
	}
}

// ParsePublicKeysPEM reads every public key in a PEM file: PKIX "PUBLIC
// KEY" blocks (RSA, EC P-256, Ed25519) and PKCS #1 "RSA PUBLIC KEY"
// blocks. Each key is pinned to the one algorithm that fits it.
func ParsePublicKeysPEM(data []byte) ([]PublicKey, error) {
	var keys []PublicKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(keys)+1, err)
		}
		alg, err := algFor(key)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", len(keys)+1, err)
		}
		keys = append(keys, PublicKey{Alg: alg, Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// matching appends to set the keys pinned to alg that may have signed a
// token with kid: the key kid names, or every one when either side has no
// kid.
func matching(keys []PublicKey, alg, kid string, set jwt.VerificationKeySet) jwt.VerificationKeySet {
	for _, k := range keys {
		if k.Alg == alg && (k.ID == "" || kid == "" || k.ID == kid) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	return set
}
