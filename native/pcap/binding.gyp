# Build of flowtel's libpcap addon (native/pcap): node-gyp + node-addon-api, linked against libpcap.
{
  "targets": [
    {
      "target_name": "flowtel_pcap",
      "sources": ["src/pcap_addon.cc", "src/udp_socket.cc", "src/udp_receiver.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
      "libraries": ["-lpcap", "-lpthread"]
    }
  ]
}
