package devkbs

import (
	"sync"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// store keeps resources in memory only: a development KBS must never leave
// model keys on disk.
type store struct {
	mu  sync.RWMutex
	res map[string][]byte
}

func newStore() *store { return &store{res: map[string][]byte{}} }

func (s *store) put(id protocol.ResourceID, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.res[id.Path()]; ok {
		clear(old)
	}
	s.res[id.Path()] = append([]byte(nil), data...)
}

// get returns a copy, so the caller may wipe it.
func (s *store) get(id protocol.ResourceID) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.res[id.Path()]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

func (s *store) delete(id protocol.ResourceID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.res[id.Path()]
	if ok {
		clear(v)
		delete(s.res, id.Path())
	}
	return ok
}

// wipe zeroes every resource (server shutdown).
func (s *store) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.res {
		clear(v)
		delete(s.res, k)
	}
}
