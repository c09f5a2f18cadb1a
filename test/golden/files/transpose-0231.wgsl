// kernel 0: transpose_tiled workgroups [2,1,1]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

var<workgroup> tile: array<array<f32, 17>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let r0 = wg.x * 16u;
  let c0 = wg.y * 16u;
  let base = wg.z * 60u;
  // read: consecutive lanes take consecutive rows r of input row c
  if (r0 + l.x < 20u && c0 + l.y < 3u) { tile[l.y][l.x] = x[base + (c0 + l.y) * 20u + r0 + l.x]; }
  workgroupBarrier();
  // write: consecutive lanes take consecutive columns c of output row r
  if (r0 + l.y < 20u && c0 + l.x < 3u) { y[base + (r0 + l.y) * 3u + c0 + l.x] = tile[l.x][l.y]; }
}
