"""Start the selfflow-wm planning service as a ROS 2 node.

ros2 launch launch/selfflow_planner.launch.py checkpoint:=/path/to/run namespace:=arm

Ctrl-C / SIGTERM: serve publishes the zero action and zero twist, then exits. params.yaml limits
motion to the simulator's workspace box: give your arm's box in params_file.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, ThisLaunchFileDir
from launch_ros.actions import Node


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('checkpoint', description='training run directory of the world model (run.json + weights)'),
        DeclareLaunchArgument('policy', default_value='wm-cem-read', description='planner preset: wm-cem-read, wm-cem-fast, wm-cem-quality, wm-mppi or a preset file'),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node and of its relative topics'),
        DeclareLaunchArgument('params_file', default_value=PathJoinSubstitution([ThisLaunchFileDir(), 'params.yaml']), description='ROS 2 params file (ros__parameters)'),
        DeclareLaunchArgument('robot', default_value='ros2', description='robot link: ros2, foxglove:ws://HOST:PORT, sim or mcap:FILE'),
        DeclareLaunchArgument('executable', default_value='selfflow-wm', description='the selfflow-wm launcher on PATH or its full path'),
        # No package: launch_ros finds the executable on PATH and appends --ros-args (node name,
        # namespace, --params-file); the CLI strips them before parsing serve's own flags.
        Node(
            executable=LaunchConfiguration('executable'),
            name='selfflow_planner',
            namespace=LaunchConfiguration('namespace'),
            output='screen',
            arguments=['serve', '--robot', LaunchConfiguration('robot'), '--policy', LaunchConfiguration('policy'), '--checkpoint', LaunchConfiguration('checkpoint')],
            parameters=[LaunchConfiguration('params_file')],
        ),
    ])
