package devkbs

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// maxSessions bounds memory if clients open sessions and never finish.
const maxSessions = 10000

// nonceBytes matches Trustee's NONCE_SIZE_BYTES.
const nonceBytes = 32

type session struct {
	id       string
	tee      string
	nonce    string
	expires  time.Time
	attested bool
	token    string
	pubkey   protocol.TeePubKey
}

var (
	errNoSession      = errors.New("session not found")
	errSessionExpired = errors.New("session expired")
	errTooManySession = errors.New("too many open sessions")
)

type sessions struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	byID    map[string]*session
	byToken map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[string]*session{}, byToken: map[string]*session{}}
}

func randomString(n int, enc func([]byte) string) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return enc(b), nil
}

// open starts a session for tee with a fresh nonce.
func (s *sessions) open(tee string) (*session, error) {
	id, err := randomString(16, hex.EncodeToString) // 32 lowercase hex, like uuid.simple
	if err != nil {
		return nil, err
	}
	nonce, err := randomString(nonceBytes, base64.StdEncoding.EncodeToString)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if len(s.byID) >= maxSessions {
		return nil, errTooManySession
	}
	sess := &session{id: id, tee: tee, nonce: nonce, expires: s.now().Add(s.ttl)}
	s.byID[id] = sess
	return sess, nil
}

// lookup returns a copy of the live session id.
func (s *sessions) lookup(id string) (session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok {
		return session{}, errNoSession
	}
	if !s.now().Before(sess.expires) {
		// Kept until the next sweep so every lookup says "expired".
		return session{}, errSessionExpired
	}
	return *sess, nil
}

// lookupToken finds the attested session that issued token.
func (s *sessions) lookupToken(token string) (session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byToken[token]
	if !ok {
		return session{}, errNoSession
	}
	if !s.now().Before(sess.expires) {
		// Kept until the next sweep so every lookup says "expired".
		return session{}, errSessionExpired
	}
	return *sess, nil
}

// markAttested records a verified attestation and issues its token.
func (s *sessions) markAttested(id string, pub protocol.TeePubKey) (string, error) {
	token, err := randomString(32, base64.RawURLEncoding.EncodeToString)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok {
		return "", errNoSession
	}
	if !s.now().Before(sess.expires) {
		s.dropLocked(sess)
		return "", errSessionExpired
	}
	if sess.attested {
		return sess.token, nil
	}
	sess.attested, sess.token, sess.pubkey = true, token, pub
	s.byToken[token] = sess
	return token, nil
}

func (s *sessions) sweepLocked() {
	now := s.now()
	for _, sess := range s.byID {
		if !now.Before(sess.expires) {
			s.dropLocked(sess)
		}
	}
}

func (s *sessions) dropLocked(sess *session) {
	delete(s.byID, sess.id)
	if sess.token != "" {
		delete(s.byToken, sess.token)
	}
}
