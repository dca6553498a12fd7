package restic

// The memory estimate's constants, for the external tests' expectations.
const (
	BytesPerRepository = bytesPerRepository
	BytesPerSnapshot   = bytesPerSnapshot
)
