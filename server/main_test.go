package server_test

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestMain puts gin in test mode: the mode is process-wide, set by the program (cmd), not by
// the handler's constructor.
func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}
