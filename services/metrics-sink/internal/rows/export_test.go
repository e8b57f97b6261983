package rows

// IsIP is isIP, for the tests.
var IsIP = isIP
