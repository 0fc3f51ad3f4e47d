//go:build !windows

package measurement

// unsyncable are the errors of File.Sync, besides EINVAL and ENOTSUP,
// that only say the output cannot be synced; none on Unix.
var unsyncable []error
