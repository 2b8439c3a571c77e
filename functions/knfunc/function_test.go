package knfunc

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLifecycle(t *testing.T) {
	f := New()
	ok, err := f.Ready(context.Background())
	require.NoError(t, err)
	assert.False(t, ok, "not ready before Start")
	_, err = f.Handle(context.Background(), event.New())
	assert.ErrorContains(t, err, "not started")

	assert.ErrorContains(t, f.Start(context.Background(), map[string]string{}), "runtime URL is required")
	assert.ErrorContains(t, f.Start(context.Background(), map[string]string{"VEIL_RUNTIME_URL": "http://127.0.0.1:1", "VEIL_PROTOCOL": "soap"}), "unknown OIP protocol")

	require.NoError(t, f.Start(context.Background(), map[string]string{"VEIL_RUNTIME_URL": "http://127.0.0.1:1"}))
	ok, err = f.Ready(context.Background())
	require.NoError(t, err)
	assert.True(t, ok)
	alive, _ := f.Alive(context.Background())
	assert.True(t, alive)

	// Another type is acknowledged without a reply and without the runtime.
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("urn:test")
	ev.SetType("com.example.other")
	reply, err := f.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Nil(t, reply)

	require.NoError(t, f.Stop(context.Background()))
	ok, _ = f.Ready(context.Background())
	assert.False(t, ok)
	require.NoError(t, f.Stop(context.Background()), "Stop twice is harmless")
}
